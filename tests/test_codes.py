"""Real codes: tables, encoder, syndrome-table decoder (against galois and a NumPy twin), codeword storage."""

from __future__ import annotations

import numpy as np
import pytest
from reference import decode_ref, flip_protected_ref, syndrome_decoder_ref

from wkbnoise import FlipRates, InputError, threads
from wkbnoise.codes import REAL_CODES, _kernels, read_stored, real_code, words_of
from wkbnoise.codes.storage import flip_protected
from wkbnoise.ecc import get_code

_TWIN_TABLES: dict = {}


def _twin_table(name):
    if name not in _TWIN_TABLES:
        c = real_code(name)
        _TWIN_TABLES[name] = syndrome_decoder_ref(c.parity, c.t)
    return _TWIN_TABLES[name]


def _pack(bits: np.ndarray) -> np.ndarray:
    """uint8[N, w] (w <= 64) -> uint64[N], bit j = column j."""
    return (bits.astype(np.uint64) << np.arange(bits.shape[1], dtype=np.uint64)).sum(axis=1, dtype=np.uint64)


def _unpack(words: np.ndarray, width: int) -> np.ndarray:
    return ((words[:, None] >> np.arange(width, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)


def _words_with_errors(code, n_words, n_err, rng):
    """Random codewords (uint8[N, n]) and received words with exactly n_err errors at random positions."""
    data = rng.integers(0, 2, (n_words, code.k), dtype=np.uint8)
    cw = np.concatenate([data, (data.astype(np.int64) @ code.parity % 2).astype(np.uint8)], axis=1)
    err = np.zeros_like(cw)
    for i in range(n_words):
        err[i, rng.choice(code.n, n_err, replace=False)] = 1
    return cw, cw ^ err


@pytest.mark.parametrize("name", REAL_CODES)
def test_code_parameters_agree_with_the_analytic_model(name):
    c, a = real_code(name), get_code(name)
    assert (c.n, c.k, c.t) == (a.n, a.k, a.t)
    assert c.info["d"] >= 2 * c.t + 1 + (name.startswith("secded"))   # SECDED: d = 4
    assert len(c.pat_data) == sum(__import__("math").comb(c.n, w) for w in range(1, c.t + 1))


@pytest.mark.parametrize("name", REAL_CODES)
def test_encoder_round_trip_and_matches_the_matrix(name):
    c = real_code(name)
    rng = np.random.default_rng(1)
    data_bits = rng.integers(0, 2, (500, c.k), dtype=np.uint8)
    data = _pack(data_bits)
    check = c.encode(data)
    np.testing.assert_array_equal(_unpack(check, c.n_check), data_bits.astype(np.int64) @ c.parity % 2)
    out, chk, status = c.decode(data, check)
    np.testing.assert_array_equal(out, data)
    np.testing.assert_array_equal(chk, check)
    assert not status.any()
    # every single error is corrected, on data and on check bits
    for p in range(c.n):
        d = data ^ (np.uint64(1 << p) if p < c.k else np.uint64(0))
        k = check ^ (np.uint64(1 << (p - c.k)) if p >= c.k else np.uint64(0))
        out, chk, status = c.decode(d, k)
        assert (out == data).all() and (chk == check).all() and (status == 1).all()


@pytest.mark.parametrize("name", REAL_CODES)
def test_decoder_equals_the_numpy_twin(name):
    c = real_code(name)
    table = _twin_table(name)
    rng = np.random.default_rng(2)
    for n_err in range(c.t + 3):
        cw, rx = _words_with_errors(c, 60, n_err, rng)
        out, chk, status = c.decode(_pack(rx[:, :c.k]), _pack(rx[:, c.k:]))
        for i in range(len(rx)):
            dec, st = decode_ref(rx[i], c.parity, table)
            assert st == status[i]
            assert _pack(dec[None, :c.k])[0] == out[i] and _pack(dec[None, c.k:])[0] == chk[i]
        if n_err <= c.t:
            assert (status == n_err).all() and (out == _pack(cw[:, :c.k])).all()
        if name.startswith("secded") and n_err == 2:
            assert (status == -1).all()          # double errors are always detected


def test_decoder_refuses_bad_words():
    c = real_code("secded-39-32")
    with pytest.raises(InputError, match="bits set at or above 32"):
        c.decode(np.array([1 << 40], dtype=np.uint64), np.zeros(1, dtype=np.uint64))
    with pytest.raises(InputError, match="uint64"):
        c.encode(np.zeros(3, dtype=np.int64))
    with pytest.raises(InputError, match="no decoder table"):
        real_code("bch-32-t2")


def _galois_cases(code, n_err, n_words, rng):
    """Received words with n_err errors; for n_err > t half of them chosen so that the table miscorrects."""
    cw, rx = _words_with_errors(code, n_words, n_err, rng)
    if n_err > code.t + code.info["d"] - 2 * code.t - 1:       # SECDED (d = 4) never miscorrects 2 errors
        for i in range(n_words // 2):
            for _ in range(500):
                e = np.zeros(code.n, dtype=np.uint8)
                e[rng.choice(code.n, n_err, replace=False)] = 1
                if code.decode(_pack(e[None, :code.k]), _pack(e[None, code.k:]))[2][0] > 0:
                    rx[i] = cw[i] ^ e
                    break
    return cw, rx


@pytest.mark.slow
@pytest.mark.parametrize("name", REAL_CODES)
def test_decoder_equals_galois(name):
    """Corrected, detected and miscorrected exactly as galois' Berlekamp-Massey decoder says."""
    pytest.importorskip("galois")
    from wkbnoise.codes.make_tables import galois_code

    c = real_code(name)
    bch, s = galois_code(name)
    np.testing.assert_array_equal(np.asarray(bch.G)[s:, s:][:, c.k:], c.parity)
    rng = np.random.default_rng(3)
    tally = {}
    for n_err in range(c.t + 3):
        cw, rx = _galois_cases(c, n_err, 16, rng)
        np.testing.assert_array_equal(np.asarray(bch.encode(cw[:, :c.k].view(np.ndarray))), cw)
        msg, n_corr = bch.decode(rx, errors=True)
        n_corr = np.asarray(n_corr)
        out, chk, status = c.decode(_pack(rx[:, :c.k]), _pack(rx[:, c.k:]))
        # galois reports 0 errors, and returns the word unchanged, when Berlekamp-Massey ends with a
        # locator of degree 0 although the syndrome is not zero (SECDED: three errors whose locators sum to
        # zero). That word is not a codeword: the bounded-distance answer is "detected", with the same data.
        not_codeword = c.encode(_pack(rx[:, :c.k])) != _pack(rx[:, c.k:])
        quirk = (n_corr == 0) & not_codeword
        np.testing.assert_array_equal(status[~quirk], n_corr[~quirk])
        assert (status[quirk] == -1).all()
        np.testing.assert_array_equal(out, _pack(np.asarray(msg)))
        right = out == _pack(cw[:, :c.k])
        tally[n_err] = {"corrected": int(np.sum((status >= 0) & right & (n_err > 0))),
                        "detected": int(np.sum(status < 0)),
                        "miscorrected": int(np.sum((status > 0) & ~right)), "galois_reports_0": int(quirk.sum())}
        if n_err > c.t + c.info["d"] - 2 * c.t - 1:
            assert tally[n_err]["miscorrected"] >= 4       # the seeded half miscorrects, as galois agrees
    print(name, tally)


@pytest.mark.parametrize("name", REAL_CODES)
@pytest.mark.parametrize("m", [1, 3, 8])
def test_storage_kernel_equals_twin(name, m):
    c = real_code(name)
    rng = np.random.default_rng(m)
    codes = rng.integers(0, 256, 333, dtype=np.uint8)           # 333 * m bits: a shortened last word
    r = FlipRates(np.linspace(0.02, 0.06, 8), np.linspace(0.0, 0.01, 8))
    out = codes.copy()
    flip_protected(codes, r, m, name, 77, out)
    ref = flip_protected_ref(codes, r.p_down, r.p_up, m, c.parity, _twin_table(name), 77)
    np.testing.assert_array_equal(out, ref)
    assert np.any(out != codes)
    low = ((1 << (8 - m)) - 1)
    assert not np.any((out ^ codes) & low)                       # only the protected planes change here


def test_storage_is_thread_invariant_and_keyed():
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 256, 200_003, dtype=np.uint8)
    r = FlipRates.uniform(0.03, 0.005, 8)
    with threads(1):
        a = read_stored(codes, r, 3, "bch-64-t2", 11)
    b = read_stored(codes, r, 3, "bch-64-t2", 11)
    np.testing.assert_array_equal(a, b)
    assert np.any(read_stored(codes, r, 3, "bch-64-t2", 12) != a)
    assert words_of(codes.size, 3, "bch-64-t2") == -(-codes.size * 3 // 64)


def test_storage_protected_planes_never_flip_at_zero_rates_and_refuse_bad_input():
    codes = np.arange(256, dtype=np.uint8)
    r = FlipRates.uniform(0.1, 0.1, 8).protect_top(8)
    np.testing.assert_array_equal(read_stored(codes, r, 8, "secded-72-64", 1), codes)
    with pytest.raises(InputError, match="1..8"):
        flip_protected(codes, FlipRates.symmetric(0.1), 0, "secded-72-64", 1, codes.copy())
    with pytest.raises(InputError, match="uint8"):
        flip_protected(codes.astype(np.uint16), FlipRates.symmetric(0.1), 2, "secded-72-64", 1, codes.copy())


def test_kernel_signatures_are_pinned():
    c = real_code("secded-72-64")
    codes = np.zeros(64, dtype=np.uint8)
    flip_protected(codes, FlipRates.symmetric(0.1), 2, c, 1, codes.copy())
    sig = _kernels._flip_protected.nopython_signatures[0].args
    assert str(sig[0]) == "array(uint8, 1d, C)" and str(sig[12]) == "uint64"
    c.decode(np.zeros(2, dtype=np.uint64), np.zeros(2, dtype=np.uint64))
    assert str(_kernels._decode_words.nopython_signatures[0].args[3]) == "readonly array(int32, 1d, C)"
