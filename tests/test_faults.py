"""Public flip API: refusals, the sampler choice, and the statistics of both samplers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from wkbnoise import FlipRates, InputError, PhysicsDomainError
from wkbnoise.faults import BLOCK, SKIP_MAX_EVENTS, choose_method, flip_codes, flip_dequantize
from wkbnoise.theory import transition_row

R8 = FlipRates.symmetric(0.1, 8)
LUT8 = np.zeros(256, np.float32)


@pytest.mark.parametrize("codes, rates, key, fragment", [
    (np.zeros(4, np.int8), R8, 0, "dtype int8"),
    (np.zeros(4, np.uint16), R8, 0, "stored as uint8"),
    (np.zeros(4, np.uint8), FlipRates.symmetric(0.1, 12), 0, "stored as uint16"),
    (np.zeros(8, np.uint8)[::2], R8, 0, "C-contiguous"),
    (np.full(4, 16, np.uint8), FlipRates.symmetric(0.1, 4), 0, "4-bit range"),
    (np.zeros(4, np.uint8), R8, -1, "key"),
    (np.zeros(4, np.uint8), R8, 2**64, "key"),
    (np.zeros(4, np.uint8), R8, 1.0, "key"),
    (np.zeros(4, np.uint8), 0.1, 0, "FlipRates"),
    ([0, 1], R8, 0, "numpy array"),
])
def test_flip_codes_refuses(codes, rates, key, fragment):
    with pytest.raises(InputError, match=fragment):
        flip_codes(codes, rates, key)


def test_refuses_bad_out_lut_and_method():
    codes = np.zeros((3, 4), np.uint8)
    with pytest.raises(InputError, match="out must be"):
        flip_codes(codes, R8, 0, out=np.zeros((3, 4), np.uint16))
    with pytest.raises(InputError, match="out must be"):
        flip_dequantize(codes, R8, LUT8, 0, out=np.zeros((3, 4), np.float64))
    with pytest.raises(InputError, match="C-contiguous"):
        flip_dequantize(codes, R8, LUT8, 0, out=np.zeros((4, 3), np.float32).T)
    with pytest.raises(InputError, match="float32"):
        flip_dequantize(codes, R8, LUT8.astype(np.float64), 0)
    with pytest.raises(InputError, match="shape"):
        flip_dequantize(codes, R8, np.zeros(128, np.float32), 0)
    with pytest.raises(InputError, match="shape"):
        flip_dequantize(codes, R8, np.zeros((4, 256), np.float32), 0)
    with pytest.raises(InputError, match="method"):
        flip_codes(codes, R8, 0, method="fast")


@pytest.mark.parametrize("make", [lambda: FlipRates.symmetric(0.5, 8), lambda: FlipRates.uniform(0.6, 0.4, 8)])
def test_no_information_rates_are_refused_upstream(make):
    with pytest.raises(PhysicsDomainError):
        make()


@pytest.mark.parametrize("make", [lambda: FlipRates.symmetric(1.2, 8), lambda: FlipRates.symmetric(-0.1, 8),
                                  lambda: FlipRates.symmetric(0.1, 1), lambda: FlipRates.symmetric(0.1, 17)])
def test_bad_rates_and_bits_are_refused(make):
    with pytest.raises(InputError):
        make()


def test_choose_method_rule():
    assert choose_method(FlipRates.symmetric(1e-6, 8)) == "skip"
    assert choose_method(FlipRates.symmetric(SKIP_MAX_EVENTS / 8, 8)) == "skip"
    assert choose_method(FlipRates.symmetric(SKIP_MAX_EVENTS / 8 * 1.01, 8)) == "mask"
    assert choose_method(FlipRates.symmetric(0.1, 8).protect_top(7)) == "skip"


def test_keys_matter():
    codes = np.zeros(10_000, np.uint8)
    assert not np.array_equal(flip_codes(codes, R8, 1), flip_codes(codes, R8, 2))
    np.testing.assert_array_equal(flip_codes(codes, R8, 1), flip_codes(codes, R8, 1))


@pytest.mark.statistical
@pytest.mark.parametrize("method", ["mask", "skip"])
def test_per_plane_rates_match(method):
    """Observed 1->0 and 0->1 rates per plane within 4.5 binomial SE (asymmetric, per-plane, one protected)."""
    pd = np.array([0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.001, 0.0])
    pu = np.array([0.05, 0.0, 0.01, 0.02, 0.002, 0.0, 0.0005, 0.0])
    r = FlipRates(pd, pu)
    codes = np.random.default_rng(0).integers(0, 256, 2_000_000).astype(np.uint8)
    got = flip_codes(codes, r, 2024, method=method)
    bits = np.unpackbits(codes[:, None], axis=1, bitorder="little")
    flips = np.unpackbits((codes ^ got)[:, None], axis=1, bitorder="little")
    for k in range(8):
        for stored, p in ((1, pd[k]), (0, pu[k])):
            sel = bits[:, k] == stored
            n, x = int(sel.sum()), int(flips[sel, k].sum())
            if p == 0:
                assert x == 0
            else:
                assert abs(x - n * p) <= 4.5 * np.sqrt(n * p * (1 - p)), (k, stored, x / n, p)
    # a wrong rate is rejected by the same check (proves the test can fail)
    sel = bits[:, 0] == 1
    n, x = int(sel.sum()), int(flips[sel, 0].sum())
    assert abs(x - n * 0.19) > 4.5 * np.sqrt(n * 0.19 * 0.81)


@pytest.mark.statistical
@pytest.mark.parametrize("p", [1e-3, 0.02])
def test_skip_block_counts_are_binomial(p):
    """Flips per (block, plane) of the geometric-skip sampler: chi-square against Binomial(BLOCK, p)."""
    n_blocks = 64
    codes = np.random.default_rng(1).integers(0, 256, n_blocks * BLOCK).astype(np.uint8)
    r = FlipRates.symmetric(p, 8)
    got = flip_codes(codes, r, 77, method="skip")
    flips = np.unpackbits((codes ^ got)[:, None], axis=1, bitorder="little").reshape(n_blocks, BLOCK, 8)
    counts = flips.sum(axis=1).ravel()                       # 512 counts, one per block and plane
    mean, sd = BLOCK * p, np.sqrt(BLOCK * p * (1 - p))
    edges = np.unique(np.round(np.linspace(mean - 3 * sd, mean + 3 * sd, 9))).astype(int)
    bins = np.concatenate([[-1], edges, [BLOCK]])
    observed = np.histogram(counts, bins=bins + 0.5)[0]
    expected = np.diff(stats.binom.cdf(bins, BLOCK, p)) * counts.size
    res = stats.chisquare(observed, expected * observed.sum() / expected.sum())
    assert res.pvalue > 1e-4
    wrong = np.diff(stats.binom.cdf(bins, BLOCK, 1.3 * p)) * counts.size
    assert stats.chisquare(observed, wrong * observed.sum() / wrong.sum()).pvalue < 1e-4


@pytest.mark.statistical
@pytest.mark.parametrize("method", ["mask", "skip"])
def test_read_law_of_one_code_matches_exact_law(method):
    """Histogram of the read pattern of one stored code vs T3's exact row (chi-square), 4-bit asymmetric."""
    r = FlipRates.uniform(0.05, 0.02, 4)
    for code in (0, 5, 15):
        got = flip_codes(np.full(400_000, code, np.uint8), r, 3 + code, method=method)
        observed = np.bincount(got, minlength=16)
        expected = transition_row(r, code) * got.size
        keep = expected >= 5
        obs = np.append(observed[keep], observed[~keep].sum())
        exp = np.append(expected[keep], expected[~keep].sum())
        assert stats.chisquare(obs, exp).pvalue > 1e-4


@pytest.mark.parametrize("rates", [FlipRates.symmetric(0.01, bits=8), FlipRates.symmetric(0.2, bits=8),
                                   FlipRates(np.full(8, 0.3), np.full(8, 0.05))])
def test_prebuilt_tables_give_the_same_draws(rates):
    from wkbnoise.faults import sampler_tables

    codes = np.random.default_rng(1).integers(0, 256, 3 * BLOCK + 17, dtype=np.uint8)
    lut = np.arange(256, dtype=np.float32) - 128
    tables = sampler_tables(rates)
    assert tables.method == choose_method(rates)
    for key in (0, 7, 2**63 + 5):
        assert np.array_equal(flip_dequantize(codes, rates, lut, key, tables=tables),
                              flip_dequantize(codes, rates, lut, key))
        assert np.array_equal(flip_codes(codes, rates, key, tables=tables), flip_codes(codes, rates, key))
    other = "mask" if tables.method == "skip" else "skip"
    forced = sampler_tables(rates, method=other)
    assert np.array_equal(flip_codes(codes, rates, 3, tables=forced), flip_codes(codes, rates, 3, method=other))


def test_prebuilt_tables_are_checked():
    from wkbnoise.faults import sampler_tables

    codes = np.zeros(100, dtype=np.uint8)
    r1, r2 = FlipRates.symmetric(0.01, bits=8), FlipRates.symmetric(0.02, bits=8)
    with pytest.raises(InputError, match="other rates"):
        flip_codes(codes, r2, 0, tables=sampler_tables(r1))
    with pytest.raises(InputError, match="sampler_tables"):
        flip_codes(codes, r1, 0, tables=(np.zeros(3), 1))
    with pytest.raises(InputError, match="'mask' but the tables"):
        flip_codes(codes, r1, 0, method="mask", tables=sampler_tables(r1, method="skip"))
    with pytest.raises(InputError, match="method="):
        sampler_tables(r1, method="fast")
