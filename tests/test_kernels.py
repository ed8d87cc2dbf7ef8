"""Kernels == NumPy twins bit for bit, at 1 and 2 threads; pinned signatures; no thread-count dependence."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from reference import flip_dequantize_ref, flip_mask_ref, flip_skip_ref

from wkbnoise import FlipRates, threads
from wkbnoise import _kernels as K
from wkbnoise import faults
from wkbnoise.faults import flip_codes, flip_dequantize

N_THREADS = (1, min(2, numba.config.NUMBA_NUM_THREADS))
BLOCK = 1000  # small blocks so that a short array spans many of them


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(faults, "BLOCK", BLOCK)


def _cases():
    yield FlipRates.symmetric(0.1, 8)
    yield FlipRates.uniform(0.2, 0.05, 8).protect_top(2)
    yield FlipRates.uniform(0.01, 0.002, 4)
    yield FlipRates(np.linspace(0.001, 0.2, 12), np.linspace(0.05, 0.0, 12))
    yield FlipRates.symmetric(0.03, 16).protect_top(3)


@pytest.mark.parametrize("rates", list(_cases()), ids=repr)
@pytest.mark.parametrize("method", ["mask", "skip"])
def test_flip_codes_equals_twin_at_1_and_2_threads(rates, method, small_blocks):
    rng = np.random.default_rng(rates.bits)
    dt = np.uint8 if rates.bits <= 8 else np.uint16
    codes = rng.integers(0, 2**rates.bits, 5003).astype(dt)
    key = 0x1234_5678_9ABC_DEF0
    if method == "mask":
        ref = flip_mask_ref(codes, rates.p_down, rates.p_up, key)
    else:
        ref = flip_skip_ref(codes, rates.p_down, rates.p_up, key, BLOCK)
    assert np.count_nonzero(ref != codes) > 0
    for n in N_THREADS:
        with threads(n):
            got = flip_codes(codes, rates, key, method=method)
        assert got.dtype == codes.dtype
        np.testing.assert_array_equal(got, ref)
    inplace = codes.copy()
    assert flip_codes(inplace, rates, key, out=inplace, method=method) is inplace
    np.testing.assert_array_equal(inplace, ref)


@pytest.mark.parametrize("method", ["mask", "skip"])
@pytest.mark.parametrize("per_channel", [False, True])
def test_flip_dequantize_equals_twin(method, per_channel, small_blocks):
    rates = FlipRates.uniform(0.04, 0.01, 8).protect_top(1)
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 256, (7, 733)).astype(np.uint8)        # rows span block boundaries
    lut = rng.standard_normal((7, 256) if per_channel else 256).astype(np.float32)
    ref = flip_dequantize_ref(codes, rates.p_down, rates.p_up, lut, 99, method, BLOCK)
    for n in N_THREADS:
        out = np.full(codes.shape, np.nan, dtype=np.float32)
        with threads(n):
            got = flip_dequantize(codes, rates, lut, 99, out=out, method=method)
        assert got is out
        np.testing.assert_array_equal(got, ref)


def test_large_array_same_at_1_and_2_threads():
    codes = np.random.default_rng(0).integers(0, 256, 1 << 20).astype(np.uint8)
    lut = np.arange(256, dtype=np.float32)
    for p in (1e-3, 0.1):
        r = FlipRates.symmetric(p, 8)
        with threads(1):
            a = flip_dequantize(codes, r, lut, 5)
        with threads(N_THREADS[-1]):
            b = flip_dequantize(codes, r, lut, 5)
        np.testing.assert_array_equal(a, b)


def test_protected_planes_never_flip_and_zero_rates_copy():
    codes = np.random.default_rng(1).integers(0, 256, 100_000).astype(np.uint8)
    r = FlipRates.symmetric(0.3, 8).protect_top(3)
    for method in ("mask", "skip"):
        got = flip_codes(codes, r, 11, method=method)
        assert np.all(((got ^ codes) >> 5) == 0)
        assert np.count_nonzero(got ^ codes) > 0
    zero = FlipRates.symmetric(0.0, 8)
    for method in ("mask", "skip"):
        np.testing.assert_array_equal(flip_codes(codes, zero, 11, method=method), codes)


def test_empty_arrays():
    for dt, bits in ((np.uint8, 8), (np.uint16, 10)):
        codes = np.zeros(0, dtype=dt)
        r = FlipRates.symmetric(0.1, bits)
        assert flip_codes(codes, r, 1).shape == (0,)
        assert flip_dequantize(codes, r, np.zeros(2**bits, np.float32), 1).shape == (0,)


def test_kernel_signatures_are_pinned():
    codes = np.zeros(10, np.uint8)
    r = FlipRates.symmetric(0.1, 8)
    lut = np.zeros(256, np.float32)
    for method in ("mask", "skip"):
        flip_codes(codes, r, 1, method=method)
        flip_dequantize(codes, r, lut, 1, method=method)
    sig = {name: [str(a) for a in getattr(K, name).nopython_signatures[0].args] for name in
           ("_flip_codes_mask", "_flip_dequantize_mask", "_flip_codes_skip", "_flip_dequantize_skip")}
    assert sig["_flip_codes_mask"] == ["array(uint8, 1d, C)", "array(uint64, 1d, C)", "int64", "uint64", "int64",
                                       "array(uint8, 1d, C)"]
    assert sig["_flip_dequantize_mask"] == ["array(uint8, 1d, C)", "array(uint64, 1d, C)", "int64",
                                            "array(float32, 2d, C)", "int64", "uint64", "int64",
                                            "array(float32, 1d, C)"]
    f8 = "array(float64, 1d, C)"
    assert sig["_flip_codes_skip"] == ["array(uint8, 1d, C)", f8, f8, f8, f8, "uint64", "int64",
                                       "array(uint8, 1d, C)"]
    assert sig["_flip_dequantize_skip"] == ["array(uint8, 1d, C)", f8, f8, f8, f8, "array(float32, 2d, C)", "int64",
                                            "uint64", "int64", "array(float32, 1d, C)"]
