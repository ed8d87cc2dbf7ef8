"""Runtime layers against torch.nn.functional, and the Numba kernels against their NumPy twins."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from reference import (
    depthwise_conv_cnhw_f32_ref,
    depthwise_conv_cnhw_ref,
    gelu_erf_ref,
    im2col_cnhw_ref,
    layer_norm_ref,
    max_pool_hw_ref,
    rel_err,
    conv_cnhw_f64_ref,
    sequential_sum_ref,
    softmax_last_ref,
    winograd_input_cnhw_ref,
    winograd_output_cnhw_ref,
)

from wkbnoise.runtime import _kernels, layers

RTOL = 1e-5



def rand(*shape, seed=0, scale=1.0):
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


# ------------------------------------------------------------------------------------------- kernels vs twins
@pytest.mark.torch
@pytest.mark.parametrize("k,s,p", [(3, 1, 1), (5, 1, 2), (3, 2, 1), (7, 7, 0), (1, 2, 0), (2, 1, 0)])
def test_im2col_kernel_equals_twin(k, s, p):
    x = rand(3, 4, 11, 10)
    Ho, Wo = (11 + 2 * p - k) // s + 1, (10 + 2 * p - k) // s + 1
    out = np.empty((3 * k * k, 4, Ho, Wo), np.float32)
    _kernels.im2col_cnhw(x, 0, 0, k, k, s, s, p, p, out)
    np.testing.assert_array_equal(out, im2col_cnhw_ref(x, k, k, s, s, p, p))  # a copy: bit for bit


@settings(max_examples=150, deadline=None)
@given(C=st.integers(1, 3), N=st.integers(1, 3), H=st.integers(1, 9), W=st.integers(1, 9),
       kh=st.integers(1, 5), kw=st.integers(1, 5), sh=st.integers(1, 3), sw=st.integers(1, 3),
       ph=st.integers(0, 3), pw=st.integers(0, 3), n0=st.integers(0, 2), extra=st.integers(0, 2),
       band=st.tuples(st.integers(0, 12), st.integers(1, 12)))
def test_im2col_kernel_equals_twin_any_geometry(C, N, H, W, kh, kw, sh, sw, ph, pw, n0, extra, band):
    """Every geometry, including padding wider than the kernel and images smaller than it, a run of
    images ``n0 .. n0 + N - 1`` inside a larger batch and a band of output rows ``r0 .. r1 - 1``: each
    output entry is written (the array starts as NaN) and equals the twin's bit for bit."""
    Ho, Wo = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    assume(Ho >= 1 and Wo >= 1)
    r0 = min(band[0], Ho - 1)
    r1 = min(Ho, r0 + band[1])
    x = rand(C, n0 + N + extra, H, W, seed=H * 10 + W)
    out = np.full((C * kh * kw, N, r1 - r0, Wo), np.nan, np.float32)
    _kernels.im2col_cnhw(x, n0, r0, kh, kw, sh, sw, ph, pw, out)
    want = im2col_cnhw_ref(x[:, n0:n0 + N], kh, kw, sh, sw, ph, pw)[:, :, r0:r1]
    np.testing.assert_array_equal(out, want)


@settings(max_examples=150, deadline=None)
@given(B=st.integers(1, 3), H=st.integers(1, 9), W=st.integers(1, 9),
       kh=st.integers(1, 4), kw=st.integers(1, 4), sh=st.integers(1, 3), sw=st.integers(1, 3),
       pads=st.tuples(*[st.integers(0, 3)] * 4), specials=st.booleans())
def test_max_pool_kernel_equals_twin_any_geometry(B, H, W, kh, kw, sh, sw, pads, specials):
    """Every geometry, asymmetric padding (windows wholly in the padding give -inf) and, with ``specials``,
    NaN, infinities and zeros of both signs: the twin's ``np.maximum`` over views, NaN where it has NaN.
    (A tie of 0.0 and -0.0 keeps the earlier tap, as PyTorch's kernel does; NumPy's SIMD maximum keeps the
    later one, so the sign of a zero result is not compared.)"""
    t, lft, b, r = pads
    Ho, Wo = (H + t + b - kh) // sh + 1, (W + lft + r - kw) // sw + 1
    assume(Ho >= 1 and Wo >= 1)
    x = rand(B, H, W, seed=H * 10 + W)
    if specials:
        flat = x.reshape(-1)
        flat[::3] = 0.0
        flat[1::5] = -0.0
        flat[::7] = np.nan
        flat[2::11] = np.inf
    out = np.full((B, Ho, Wo), 7.0, np.float32)
    _kernels.max_pool_hw(x, kh, kw, sh, sw, t, lft, out)
    want = max_pool_hw_ref(x, kh, kw, sh, sw, pads)
    np.testing.assert_array_equal(out, want)  # NaN where the twin has NaN; +0.0 == -0.0


def test_max_pool_twin_pads_where_it_should():
    """The twin against a direct definition, and the check rejects a pad on the wrong side."""
    x = rand(1, 5, 6)
    ref = max_pool_hw_ref(x, 3, 3, 2, 2, (1, 0, 1, 2))
    assert ref.shape == (1, 3, 3)
    assert ref[0, 0, 0] == x[0, 0:2, 0:3].max() and ref[0, 2, 2] == x[0, 3:5, 4:6].max()
    assert not np.array_equal(ref, max_pool_hw_ref(x, 3, 3, 2, 2, (0, 1, 2, 1)))


@settings(max_examples=120, deadline=None)
@given(C=st.integers(1, 3), N=st.integers(1, 3), H=st.integers(1, 9), W=st.integers(1, 9),
       kh=st.integers(1, 4), kw=st.integers(1, 4), sh=st.integers(1, 2), sw=st.integers(1, 2),
       ph=st.integers(0, 2), pw=st.integers(0, 2))
def test_depthwise_kernel_bit_for_bit_any_geometry(C, N, H, W, kh, kw, sh, sw, ph, pw):
    """Every geometry (the flat stride-1 path when ``Wo == W``, the per-row path otherwise): the same bits
    as the float32 sums in the kernel's order, and within float32 rounding of the float64 twin."""
    Ho, Wo = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    assume(Ho >= 1 and Wo >= 1)
    x, w, b = rand(C, N, H, W, seed=H * 10 + W), rand(C, 1, kh, kw, seed=1), rand(C, seed=2)
    out = np.full((C, N, Ho, Wo), np.nan, np.float32)
    _kernels.depthwise_conv_cnhw(x, w, b, sh, sw, ph, pw, out)
    np.testing.assert_array_equal(out, depthwise_conv_cnhw_f32_ref(x, w, b, sh, sw, ph, pw))
    assert rel_err(out, depthwise_conv_cnhw_ref(x, w, b, sh, sw, ph, pw)) < 1e-5


def test_depthwise_order_check_rejects_another_order():
    """The in-order sums are not the float64 result rounded once: the bit-for-bit check above can fail."""
    x, w, b = rand(4, 2, 9, 9, scale=30), rand(4, 1, 3, 3, seed=1, scale=30), rand(4, seed=2)
    ordered = depthwise_conv_cnhw_f32_ref(x, w, b, 1, 1, 1, 1)
    once = depthwise_conv_cnhw_ref(x, w, b, 1, 1, 1, 1).astype(np.float32)
    assert not np.array_equal(ordered, once)


def test_im2col_twin_is_a_convolution():
    """The twin itself against a direct definition of one output pixel (checks the (c, i, j) row order)."""
    x = rand(2, 1, 5, 5)
    cols = im2col_cnhw_ref(x, 3, 3, 1, 1, 1, 1)
    assert cols[0 * 9 + 1 * 3 + 2, 0, 2, 3] == x[0, 0, 2, 4]   # c=0, i=1, j=2 at (oh, ow) = (2, 3)
    assert cols[1 * 9 + 0 * 3 + 0, 0, 0, 0] == 0.0              # top-left padding
    assert cols[1 * 9 + 2 * 3 + 2, 0, 1, 1] == x[1, 0, 2, 2]


@pytest.mark.parametrize("s", [1, 2])
def test_depthwise_kernel_matches_twin(s):
    x, w, b = rand(6, 3, 9, 8), rand(6, 1, 3, 3, seed=1), rand(6, seed=2)
    Ho, Wo = (9 + 2 - 3) // s + 1, (8 + 2 - 3) // s + 1
    out = np.empty((6, 3, Ho, Wo), np.float32)
    _kernels.depthwise_conv_cnhw(x, w, b, s, s, 1, 1, out)
    ref = depthwise_conv_cnhw_ref(x, w, b, s, s, 1, 1)
    assert rel_err(out, ref) < 1e-6
    wrong = depthwise_conv_cnhw_ref(x, w[:, :, ::-1, ::-1].copy(), b, s, s, 1, 1)  # a flipped kernel is caught
    assert rel_err(out, wrong) > 1e-2


def test_gelu_kernel_matches_twin():
    x = np.concatenate([rand(4000, scale=6), np.array([0.0, -0.0, 1e-30, -40.0, 40.0], np.float32)])
    out = np.empty_like(x)
    _kernels.gelu_erf(x, out)
    ref = gelu_erf_ref(x)
    err = np.abs(out - ref)
    assert np.max(err / (np.abs(x) + 1)) < 4e-7  # a float32 erf: a few float32 ulps of max(|x|, 1)
    assert out[-2] == 0 and out[-1] == 40  # the tails: 0 and x, exactly
    assert np.max(err / (np.abs(x) + 1)) * 100 < np.max(np.abs(out - 0.5 * x * (1 + np.tanh(x))) / (np.abs(x) + 1))
    tanh_form = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x.astype(np.float64) ** 3)))
    assert np.max(np.abs(out - tanh_form)) > 1e-4  # the check tells exact GELU from the tanh approximation


def _record_cols(monkeypatch) -> list:
    """The shapes of the column arrays the im2col kernel fills, in call order, from now on."""
    shapes = []
    real = _kernels.im2col_cnhw
    monkeypatch.setattr(_kernels, "im2col_cnhw", lambda x, *a: shapes.append(a[-1].shape) or real(x, *a))
    return shapes


@pytest.mark.parametrize("k,s,p", [(3, 1, 1), (3, 2, 1), (5, 1, 2)])
def test_chunked_conv_equals_one_gemm(monkeypatch, k, s, p):
    x, w, b = rand(3, 10, 9, 9), rand(5, 3, k, k, seed=1), rand(5, seed=2)
    whole = layers.conv2d_cnhw(x, w, b, stride=s, padding=p)
    Ho = (9 + 2 * p - k) // s + 1
    monkeypatch.setattr(layers, "COLS_CHUNK_BYTES", 4 * 3 * k * k * Ho * Ho * 3)  # 3 images per chunk
    calls = []
    real = layers._conv_chunked
    monkeypatch.setattr(layers, "_conv_chunked", lambda *a: calls.append(a[-2]) or real(*a))
    pieces = _record_cols(monkeypatch)
    buffers = {}
    chunked = layers.conv2d_cnhw(x, w, b, stride=s, padding=p, buffers=buffers)
    assert calls == [3] and [sh[1] for sh in pieces] == [3, 3, 3, 1]  # chunks of 3 images and the last one
    assert list(buffers) == ["cols"] and buffers["cols"].size == math.prod(pieces[0])  # one work array, reused
    assert rel_err(chunked, whole) < 1e-6
    assert rel_err(chunked, layers.conv2d_cnhw(x, w[:, :, ::-1], b, stride=s, padding=p)) > 1e-2


@pytest.mark.parametrize("k,s,p", [(3, 1, 1), (3, 2, 1), (7, 2, 3)])
def test_banded_conv_equals_one_gemm(monkeypatch, k, s, p):
    """With ``bands`` (one BLAS thread), images whose columns exceed ``COLS_CHUNK_BYTES`` go through in
    bands of output rows (4 rows here, the last band shorter): the same output as one GEMM over the whole
    batch. Without it, whole images."""
    x, w, b = rand(3, 2, 19, 17), rand(5, 3, k, k, seed=1), rand(5, seed=2)
    whole = layers.conv2d_cnhw(x, w, b, stride=s, padding=p)
    Ho, Wo = whole.shape[2:]
    monkeypatch.setattr(layers, "COLS_CHUNK_BYTES", 4 * 3 * k * k * Ho * Wo - 1)  # < one image
    monkeypatch.setattr(layers, "COLS_BAND_BYTES", 4 * 3 * k * k * Wo * 4)      # 4 output rows
    pieces = _record_cols(monkeypatch)
    per_image = layers.conv2d_cnhw(x, w, b, stride=s, padding=p, buffers={})
    assert [sh[1:3] for sh in pieces] == [(1, Ho)] * 2
    assert rel_err(per_image, whole) < 1e-6  # BLAS's small-matrix kernels may round these tiny GEMMs apart
    pieces.clear()
    banded = layers.conv2d_cnhw(x, w, b, stride=s, padding=p, buffers={}, bands=True)
    rows = [4] * (Ho // 4) + [Ho % 4] * (Ho % 4 > 0)  # bands of 4 rows and the rest, per image
    assert [sh[1:3] for sh in pieces] == [(1, r) for r in rows] * 2
    assert rel_err(banded, whole) < 1e-6
    assert rel_err(banded, layers.conv2d_cnhw(x, w[:, :, ::-1], b, stride=s, padding=p)) > 1e-2


# ------------------------------------------------------------------------------- Winograd F(2x2, 3x3)
@settings(max_examples=150, deadline=None)
@given(C=st.integers(1, 3), N=st.integers(1, 3), H=st.integers(1, 9), W=st.integers(1, 9),
       ph=st.integers(0, 2), pw=st.integers(0, 2), n0=st.integers(0, 2), band=st.data())
def test_winograd_input_kernel_equals_twin_any_geometry(C, N, H, W, ph, pw, n0, band):
    """The tiles of any geometry, any images ``n0 ..`` and any band of tile rows, bit for bit."""
    Ho, Wo = H + 2 * ph - 2, W + 2 * pw - 2
    assume(Ho >= 1 and Wo >= 1)
    th, tw = (Ho + 1) // 2, (Wo + 1) // 2
    ty0 = band.draw(st.integers(0, th - 1))
    tb = band.draw(st.integers(1, th - ty0))
    x = rand(C, N + n0, H, W, seed=C * 100 + H * 10 + W)
    out = np.full((16, C, N * tb * tw), np.nan, np.float32)
    pad = np.full((2 * tb + 2) * (2 * tw + 2), np.nan, np.float32)  # stale scratch must not leak in
    _kernels.winograd_input_cnhw(x, n0, ty0, tb, tw, ph, pw, pad, out)
    want = winograd_input_cnhw_ref(x[:, n0:], ph, pw)[:, :, :, ty0:ty0 + tb]
    np.testing.assert_array_equal(out.reshape(16, C, N, tb, tw), want)


@settings(max_examples=150, deadline=None)
@given(O=st.integers(1, 3), N=st.integers(1, 3), Ho=st.integers(1, 9), Wo=st.integers(1, 9),
       n0=st.integers(0, 2), band=st.data())
def test_winograd_output_kernel_equals_twin_any_geometry(O, N, Ho, Wo, n0, band):
    th, tw = (Ho + 1) // 2, (Wo + 1) // 2
    ty0 = band.draw(st.integers(0, th - 1))
    tb = band.draw(st.integers(1, th - ty0))
    m, bias = rand(16, O, N, tb, tw, seed=O + 10 * Ho + 100 * Wo), rand(O, seed=7)
    out = np.full((O, N + n0, Ho, Wo), np.nan, np.float32)
    _kernels.winograd_output_cnhw(m.reshape(16, O, -1), bias, n0, ty0, tb, tw, out)
    full = np.zeros((16, O, N, th, tw), np.float32)
    full[:, :, :, ty0:ty0 + tb] = m
    want = winograd_output_cnhw_ref(full, bias, Ho, Wo)
    r0, r1 = 2 * ty0, min(Ho, 2 * (ty0 + tb))  # the rows of the band; every other stays untouched
    np.testing.assert_array_equal(out[:, n0:, r0:r1], want[:, :, r0:r1])
    assert np.isnan(out[:, :n0]).all()
    assert np.isnan(out[:, n0:, :r0]).all() and np.isnan(out[:, n0:, r1:]).all()


def _winograd_error(got, x, w, b, ph, pw):
    """Largest error of ``got`` against the float64 convolution, in units of float32 rounding of the terms
    of its Winograd tile: ``eps * sum_c max|w[o, c]| sum |x|`` over the 4 x 4 input window of the 2 x 2
    block of outputs (the transforms add and subtract the whole window, so an output whose own terms are
    small can still carry the rounding of its neighbours'), plus ``|bias|``."""
    want, _ = conv_cnhw_f64_ref(x, w, b, ph, pw)
    C, N, H, W = x.shape
    Ho, Wo = want.shape[2:]
    th, tw = (Ho + 1) // 2, (Wo + 1) // 2
    xa = np.zeros((C, N, 2 * th + 2, 2 * tw + 2))
    xa[:, :, ph:ph + H, pw:pw + W] = np.abs(x)
    window = sum(xa[:, :, i:i + 2 * th:2, j:j + 2 * tw:2] for i in range(4) for j in range(4))
    tile = np.einsum("oc,cnyx->onyx", np.abs(w.astype(np.float64)).max(axis=(2, 3)), window)
    scale = np.repeat(np.repeat(tile, 2, axis=2), 2, axis=3)[:, :, :Ho, :Wo]
    if b is not None:
        scale = scale + np.abs(b.astype(np.float64))[:, None, None, None]
    return float(np.max(np.abs(got - want) / (np.finfo(np.float32).eps * np.maximum(scale, 1e-30))))


@settings(max_examples=60, deadline=None)
@given(C=st.integers(1, 5), O=st.integers(1, 5), N=st.integers(1, 4), H=st.integers(2, 12),
       W=st.integers(2, 12), p=st.integers(0, 2), bias=st.booleans(), chunk=st.integers(1, 6000))
def test_winograd_conv_is_the_convolution_any_geometry(C, O, N, H, W, p, bias, chunk):
    """Against the float64 sum, within a few float32 roundings of each output's terms, whatever the
    chunks of images or bands of tile rows (``WINOGRAD_CHUNK_BYTES``, ``WINOGRAD_MIN_TILES`` shrunk)."""
    assume(H + 2 * p >= 3 and W + 2 * p >= 3)
    x, w = rand(C, N, H, W, seed=H * W), rand(O, C, 3, 3, seed=C * O)
    b = rand(O, seed=3) if bias else None
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(layers, "WINOGRAD_CHUNK_BYTES", chunk)
        mp.setattr(layers, "WINOGRAD_MIN_TILES", 1)
        got = layers.conv3x3_winograd_cnhw(x, w, b, padding=(p, p), buffers={})
    assert got.shape == (O, N, H + 2 * p - 2, W + 2 * p - 2) and got.dtype == np.float32
    assert _winograd_error(got, x, w, b, p, p) < 16


def test_winograd_check_rejects_a_wrong_transform(monkeypatch):
    """The tolerance has teeth: a filter transform with one entry of ``G`` off by its sign is caught, and
    so are the filters read flipped (a true convolution instead of PyTorch's correlation)."""
    x, w, b = rand(4, 3, 10, 9), rand(6, 4, 3, 3, seed=1), rand(6, seed=2)
    good = layers.conv3x3_winograd_cnhw(x, w, b, padding=(1, 1))
    assert _winograd_error(good, x, w, b, 1, 1) < 16
    flipped = layers.conv3x3_winograd_cnhw(x, np.ascontiguousarray(w[:, :, ::-1, ::-1]), b, padding=(1, 1))
    assert _winograd_error(flipped, x, w, b, 1, 1) > 1e3
    g = layers._WINOGRAD_G.copy()
    g[2, 1] = -g[2, 1]
    monkeypatch.setattr(layers, "_WINOGRAD_K", np.kron(g, g))
    bad = layers.conv3x3_winograd_cnhw(x, w, b, padding=(1, 1))
    assert _winograd_error(bad, x, w, b, 1, 1) > 1e3


def test_winograd_runs_where_it_pays_and_chunks_as_documented(monkeypatch):
    """``conv2d_cnhw`` takes the Winograd path for a 3 x 3, stride-1 layer of enough channels, plane and
    tiles only, whatever ``bands`` says; chunks of images carry at least ``WINOGRAD_MIN_TILES`` tiles; a
    large image goes in bands of tile rows."""
    calls = []
    real = layers.conv3x3_winograd_cnhw
    monkeypatch.setattr(layers, "conv3x3_winograd_cnhw",
                        lambda *a, **k: calls.append(a[0].shape) or real(*a, **k))
    w32 = rand(32, 32, 3, 3, seed=1, scale=0.1)
    x = rand(32, 84, 14, 14)  # 84 images x 49 tiles x 32 x 32 = 4,214,784 >= 2^22
    for bands in (False, True):
        out = layers.conv2d_cnhw(x, w32, None, padding=1, bands=bands)
        assert _winograd_error(out, x, w32, None, 1, 1) < 16
    assert len(calls) == 2
    layers.conv2d_cnhw(np.ascontiguousarray(x[:, :83]), w32, None, padding=1)  # 4,164,608: im2col
    layers.conv2d_cnhw(x, w32, None, padding=1, stride=2)                    # stride 2
    layers.conv2d_cnhw(np.ascontiguousarray(x[:, :, :8, :8]), w32, None)      # 6 x 6 output
    layers.conv2d_cnhw(x[:16], rand(32, 16, 3, 3), None, padding=1)          # 16 input channels
    layers.conv2d_cnhw(x, rand(16, 32, 3, 3), None, padding=1)               # 16 output channels
    assert len(calls) == 2
    assert layers._winograd_pays(32, 84, 32, 14, 14) and not layers._winograd_pays(32, 83, 32, 14, 14)
    assert layers._winograd_pays(256, 3, 256, 14, 14) and not layers._winograd_pays(256, 1, 256, 14, 14)
    assert layers._winograd_pays(64, 200, 64, 7, 7) and not layers._winograd_pays(512, 1000, 512, 6, 7)
    assert layers._winograd_pays(512, 4, 512, 7, 7) and not layers._winograd_pays(512, 3, 512, 7, 7)  # tiles
    assert not layers._winograd_pays(16, 1000, 64, 28, 28) and not layers._winograd_pays(64, 1000, 16, 28, 28)
    # chunks: the GEMMs' tiles, recorded at the input transform
    tiles = []
    real_in = _kernels.winograd_input_cnhw
    monkeypatch.setattr(_kernels, "winograd_input_cnhw",
                        lambda *a: tiles.append((a[2], a[3], a[-1].shape[2])) or real_in(*a))
    buffers = {}
    monkeypatch.setattr(layers, "WINOGRAD_CHUNK_BYTES", 16 * 64 * 7 * 4 * 7 * 3)  # 3 images of 7 x 7 tiles
    layers.conv3x3_winograd_cnhw(x[:, :8], w32, None, buffers=buffers)
    assert tiles == [(0, 7, 49 * 4)] * 2  # raised to WINOGRAD_MIN_TILES = 192: 4 images a chunk
    assert set(buffers) == {"wino_v", "wino_m", "wino_pad"}
    tiles.clear()
    monkeypatch.setattr(layers, "WINOGRAD_MIN_TILES", 1)
    layers.conv3x3_winograd_cnhw(x[:, :8], w32, None, buffers=buffers)
    assert [t[2] for t in tiles] == [147, 147, 98]
    tiles.clear()
    monkeypatch.setattr(layers, "WINOGRAD_CHUNK_BYTES", 16 * 64 * 7 * 4 * 3 - 1)  # < 3 tile rows: bands of 2
    out = layers.conv3x3_winograd_cnhw(x[:, :2], w32, None, buffers=buffers)
    assert tiles == [(0, 2, 14), (2, 2, 14), (4, 2, 14), (6, 1, 7)] * 2
    assert _winograd_error(out, x[:, :2], w32, None, 1, 1) < 16


@st.composite
def _score_rows(draw):
    """A float32 (rows, n) array of attention-like scores: any row length, mixed scales, and some rows with
    NaN, +-inf or the float32 minimum of a padding mask."""
    rows, n = draw(st.integers(1, 6)), draw(st.integers(1, 300))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((rows, n)) * rng.choice([1e-3, 1.0, 30.0], size=(rows, 1))).astype(np.float32)
    specials = np.array([np.nan, np.inf, -np.inf, np.finfo(np.float32).min, 0.0, -0.0], np.float32)
    for _ in range(draw(st.integers(0, 3))):
        x[rng.integers(rows), rng.integers(n)] = specials[draw(st.integers(0, len(specials) - 1))]
    return x


@settings(max_examples=150, deadline=None)
@given(_score_rows())
def test_softmax_rows_equal_the_numpy_expression_bit_for_bit(x):
    got = layers.softmax(x)
    assert got.dtype == np.float32 and not np.shares_memory(got, x)
    ref = softmax_last_ref(x)
    assert np.array_equal(got, ref, equal_nan=True)  # every value, NaNs in the same places
    scores = x.reshape(1, 1, *x.shape).copy()
    assert np.array_equal(layers._softmax_rows(scores)[0, 0], ref, equal_nan=True)  # in place, any leading axes


def test_softmax_row_sums_need_numpys_pairwise_order():
    """The bit-for-bit check above has teeth: summing the exponentials left to right instead of in NumPy's
    pairwise order changes some rows' sums, so a kernel that did that would fail it."""
    rng = np.random.default_rng(3)
    e = np.exp(rng.standard_normal((2000, 17)).astype(np.float32))
    numpy_order = e.sum(axis=-1)
    assert np.array_equal(numpy_order, np.float32(0) + e.sum(axis=-1))
    assert np.count_nonzero(sequential_sum_ref(e) != numpy_order) > 100
    x = np.log(e)
    assert np.array_equal(layers.softmax(x), softmax_last_ref(x))
    rows = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, -1.0]], np.float32)  # a zero sum: NaN or inf, no exception
    _kernels.softmax_scale_rows(rows)
    assert np.isnan(rows[0]).all() and np.array_equal(rows[1], [np.inf, np.nan, -np.inf], equal_nan=True)


@st.composite
def _norm_rows(draw):
    """A float32 (a, b, D) array of activations with a common offset and scale, some specials, and
    float32 LayerNorm weights."""
    D = draw(st.one_of(st.integers(1, 300), st.sampled_from([384, 768])))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = (rng.standard_normal((draw(st.integers(1, 4)), draw(st.integers(1, 5)), D))
         * draw(st.sampled_from([1e-3, 1.0, 50.0])) + draw(st.sampled_from([0.0, 3.0, -100.0]))).astype(np.float32)
    for _ in range(draw(st.integers(0, 2))):
        x.reshape(-1)[rng.integers(x.size)] = draw(st.sampled_from([np.nan, np.inf, -np.inf, 0.0]))
    w, b = rng.standard_normal(D).astype(np.float32), rng.standard_normal(D).astype(np.float32)
    return x, w, b, draw(st.sampled_from([1e-5, 1e-6, 1e-12]))


@settings(max_examples=120, deadline=None)
@given(_norm_rows())
def test_layer_norm_rows_equal_the_numpy_statements_bit_for_bit(case):
    x, w, b, eps = case
    got = layers.layer_norm(x, w, b, eps)
    assert got.dtype == np.float32 and got.shape == x.shape and not np.shares_memory(got, x)
    assert np.array_equal(got, layer_norm_ref(x, w, b, eps), equal_nan=True)
    strided = np.repeat(x, 2, axis=-1)[..., ::2]  # a non-contiguous input: the same values
    assert np.array_equal(layers.layer_norm(strided, w, b, eps), got, equal_nan=True)


def test_layer_norm_check_rejects_a_fused_multiply_add():
    """The bit-for-bit check above has teeth: ``(x * s) * w + b`` with the last two steps fused (one
    rounding, as an FMA kernel would do) differs from the three NumPy statements in many values."""
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((50, 17, 64)).astype(np.float32), rand(64, seed=1), rand(64, seed=2)
    ref = layer_norm_ref(x, w, b, 1e-6)
    xc = x - x.mean(-1, keepdims=True, dtype=np.float32)
    s = 1.0 / np.sqrt(np.einsum("...i,...i->...", xc, xc)[..., None] * np.float32(1 / 64) + np.float32(1e-6))
    fused = ((xc * s).astype(np.float64) * w + b).astype(np.float32)
    assert rel_err(fused, ref) < 1e-6 and np.count_nonzero(fused != ref) > 1000
    assert np.array_equal(layers.layer_norm(x, w, b, 1e-6), ref)
    # weights of another dtype or shape take the NumPy statements themselves
    w64 = w.astype(np.float64)
    assert np.array_equal(layers.layer_norm(x, w64, b, 1e-6), layer_norm_ref(x, w64, b, 1e-6))


def test_softmax_other_axes_and_dtypes_keep_the_numpy_path():
    x = rand(3, 5, 7)
    for axis in (0, 1):
        assert np.array_equal(layers.softmax(x, axis=axis), np.exp(x - x.max(axis, keepdims=True))
                              / np.exp(x - x.max(axis, keepdims=True)).sum(axis, keepdims=True))
    x64 = x.astype(np.float64)
    assert layers.softmax(x64).dtype == np.float64
    assert np.allclose(layers.softmax(x64).sum(-1), 1.0)


def test_kernel_signatures_are_float32():
    x = rand(1, 2, 6, 6)
    out = np.empty((9, 2, 6, 6), np.float32)
    _kernels.im2col_cnhw(x, 0, 0, 3, 3, 1, 1, 1, 1, out)
    assert str(_kernels.im2col_cnhw.nopython_signatures[0].args[0]) == "array(float32, 4d, C)"


# ------------------------------------------------------------------------------------------- against torch
@pytest.fixture(scope="module")
def F():
    torch = pytest.importorskip("torch")
    return torch.nn.functional


def T(a):
    import torch

    return torch.from_numpy(np.ascontiguousarray(a))



@pytest.mark.torch
@pytest.mark.parametrize("cin,cout,k,stride,padding,groups", [
    (1, 6, 5, 1, 2, 1), (6, 16, 5, 1, 0, 1), (16, 32, 3, 2, 1, 1), (8, 8, 3, 1, 1, 8), (8, 8, 3, 2, 1, 8),
    (4, 6, 3, 1, 1, 2), (1, 64, 7, 7, 0, 1), (16, 32, 1, 2, 0, 1), (12, 20, 1, 1, 0, 1),
])
def test_conv2d(F, cin, cout, k, stride, padding, groups):
    x, w, b = rand(5, cin, 14, 13), rand(cout, cin // groups, k, k, seed=1), rand(cout, seed=2)
    got = layers.conv2d(x, w, b, stride=stride, padding=padding, groups=groups)
    ref = F.conv2d(T(x), T(w), T(b), stride=stride, padding=padding, groups=groups).numpy()
    assert got.shape == ref.shape and got.dtype == np.float32
    assert rel_err(got, ref) < RTOL
    no_bias = layers.conv2d(x, w, None, stride=stride, padding=padding, groups=groups)
    assert rel_err(no_bias, ref) > 1e-3  # the check sees a missing bias


@pytest.mark.torch
@pytest.mark.parametrize("cin,cout,hw,padding",
                         [(32, 32, (14, 14), 1), (32, 48, (17, 15), 1), (40, 32, (16, 18), 0)])
def test_conv2d_winograd_matches_torch(F, monkeypatch, cin, cout, hw, padding):
    """A layer that takes the Winograd path (counted) against PyTorch, odd sides included."""
    calls = []
    real = layers.conv3x3_winograd_cnhw
    monkeypatch.setattr(layers, "conv3x3_winograd_cnhw", lambda *a, **k: calls.append(1) or real(*a, **k))
    x, w, b = rand(96, cin, *hw), rand(cout, cin, 3, 3, seed=1, scale=0.2), rand(cout, seed=2)
    got = layers.conv2d(x, w, b, padding=padding)
    ref = F.conv2d(T(x), T(w), T(b), padding=padding).numpy()
    assert calls == [1] and got.shape == ref.shape
    assert rel_err(got, ref) < RTOL
    assert rel_err(layers.conv2d(x, w[:, :, ::-1].copy(), b, padding=padding), ref) > 1e-2


@pytest.mark.torch
def test_linear_relu_relu6_gelu(F):
    x, w, b = rand(7, 5, 12, scale=4), rand(9, 12, seed=1), rand(9, seed=2)
    assert rel_err(layers.linear(x, w, b), F.linear(T(x), T(w), T(b)).numpy()) < RTOL
    assert rel_err(layers.linear(x[0], w, b), F.linear(T(x[0]), T(w), T(b)).numpy()) < RTOL
    np.testing.assert_array_equal(layers.relu(x), F.relu(T(x)).numpy())
    np.testing.assert_array_equal(layers.relu6(x), F.relu6(T(x)).numpy())
    assert rel_err(layers.gelu(x), F.gelu(T(x)).numpy()) < 1e-6
    assert rel_err(layers.gelu(x, "tanh"), F.gelu(T(x), approximate="tanh").numpy()) < 1e-6
    assert rel_err(layers.gelu(x, "tanh"), F.gelu(T(x)).numpy()) > 1e-5  # exact vs tanh form: told apart


@pytest.mark.torch
@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (3, 1, 1), (2, 1, 0)])
def test_pooling(F, k, s, p):
    x = rand(3, 4, 9, 8)
    np.testing.assert_array_equal(layers.max_pool2d(x, k, s, p), F.max_pool2d(T(x), k, s, p).numpy())
    assert rel_err(layers.avg_pool2d(x, k, s, p), F.avg_pool2d(T(x), k, s, p).numpy()) < RTOL
    assert layers.max_pool2d(x, k, s, p).shape == F.max_pool2d(T(x), k, s, p).shape


@pytest.mark.torch
@pytest.mark.parametrize("out", [1, 2, 3, (2, 4), 7])
def test_adaptive_avg_pool(F, out):
    x = rand(2, 3, 7, 9)
    assert rel_err(layers.adaptive_avg_pool2d(x, out), F.adaptive_avg_pool2d(T(x), out).numpy()) < RTOL


@pytest.mark.torch
def test_flatten_add_softmax(F):
    import torch

    x, y = rand(2, 3, 4, 5), rand(2, 3, 4, 5, seed=1)
    np.testing.assert_array_equal(layers.flatten(x), torch.flatten(T(x), 1).numpy())
    np.testing.assert_array_equal(layers.add(x, y), (T(x) + T(y)).numpy())
    s = rand(4, 6, scale=10)
    assert rel_err(layers.softmax(s), F.softmax(T(s), dim=-1).numpy()) < 1e-6
    assert rel_err(layers.softmax(s, axis=0), F.softmax(T(s), dim=0).numpy()) < 1e-6


@pytest.mark.torch
def test_layer_norm(F):
    x, w, b = rand(3, 5, 16, scale=3) + 2, rand(16, seed=1), rand(16, seed=2)
    for eps in (1e-6, 1e-12):
        assert rel_err(layers.layer_norm(x, w, b, eps), F.layer_norm(T(x), (16,), T(w), T(b), eps).numpy()) < RTOL


def _mha_torch(torch, x, wq, bq, wk, bk, wv, bv, wo, bo, heads, mask=None):
    n, t, d = x.shape
    dh = d // heads

    def split(w, b):
        return (T(x) @ T(w).T + T(b)).reshape(n, t, heads, dh).transpose(1, 2)

    q, k, v = split(wq, bq), split(wk, bk), split(wv, bv)
    am = None if mask is None else T(mask.astype(bool))[:, None, None, :]
    ctx = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=am)
    return (ctx.transpose(1, 2).reshape(n, t, d) @ T(wo).T + T(bo)).numpy()


def _block(p, names, *, prenorm, mask=None, eps, heads, dim, mlp):
    """One encoder layer built by the graph builder from tensors ``p`` and run through the graph."""
    from wkbnoise.runtime.builders import GraphBuilder, encoder_block

    b = GraphBuilder(p, "a test block")
    out = encoder_block(b, "x", names, dim=dim, heads=heads, mlp=mlp, eps=eps, prenorm=prenorm,
                        mask=None if mask is None else "mask")
    inputs = [{"name": "x", "dtype": "float32", "shape": [None, None, dim]}]
    if mask is not None:
        inputs.append({"name": "mask", "dtype": "int64", "shape": [None, None]})
    graph, params = b.finish(inputs, [out], task="encoder")
    return graph, params


@pytest.mark.torch
def test_attention_with_padding_mask(F):
    import torch

    d, heads = 32, 4
    x = rand(3, 6, d)
    ws = [rand(d, d, seed=i, scale=0.3) for i in range(4)]
    bs = [rand(d, seed=10 + i, scale=0.1) for i in range(4)]
    args = (ws[0], bs[0], ws[1], bs[1], ws[2], bs[2], ws[3], bs[3])
    mask = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0]])
    q, k, v = (layers.linear(x, w, b) for w, b in zip(ws[:3], bs[:3], strict=True))

    def attn(bias):
        return layers.linear(layers.attention(q, k, v, heads=heads, bias=bias), ws[3], bs[3])

    got = attn(layers.attention_bias(mask))
    assert rel_err(got, _mha_torch(torch, x, *args, heads, mask)) < RTOL
    assert rel_err(attn(None), _mha_torch(torch, x, *args, heads)) < RTOL
    assert rel_err(attn(None)[1], got[1]) > 1e-3  # the mask changes the padded sequences


@pytest.mark.torch
def test_prenorm_block_matches_torch_vit_block(F):
    tm = pytest.importorskip("wkbnoise.zoo.train_models")
    import torch

    from wkbnoise.runtime.graph import run

    torch.manual_seed(0)
    block = tm.Block(32, 4, 64).eval()
    for p in block.parameters():
        torch.nn.init.normal_(p, std=0.2)
    x = rand(2, 5, 32)
    with torch.no_grad():
        ref = block(T(x)).numpy()
    p = {f"b.{k}": v.detach().numpy() for k, v in block.state_dict().items()}
    names = {"ln1": "b.norm1", "ln2": "b.norm2", "qkv": "b.attn.qkv", "o": "b.attn.proj", "fc1": "b.mlp.fc1",
             "fc2": "b.mlp.fc2"}
    graph, params = _block(p, names, prenorm=True, eps=1e-6, heads=4, dim=32, mlp=64)
    got = run(graph, params, {"x": x})[graph.outputs[0]]
    assert rel_err(got, ref) < RTOL
    p["b.attn.qkv.weight"] = p["b.attn.qkv.weight"] * np.float32(1.01)
    graph, params = _block(p, names, prenorm=True, eps=1e-6, heads=4, dim=32, mlp=64)
    assert rel_err(run(graph, params, {"x": x})[graph.outputs[0]], ref) > 10 * RTOL


@pytest.mark.torch
def test_postnorm_block_matches_torch(F):
    """A BERT layer written with torch.nn modules (HF's names), independent of transformers."""
    import torch
    from torch import nn

    from wkbnoise.runtime.graph import run

    d, f, heads = 32, 48, 4
    torch.manual_seed(1)
    mods = nn.ModuleDict({
        "attention_self_query": nn.Linear(d, d), "attention_self_key": nn.Linear(d, d),
        "attention_self_value": nn.Linear(d, d), "attention_output_dense": nn.Linear(d, d),
        "attention_output_LayerNorm": nn.LayerNorm(d, eps=1e-12), "intermediate_dense": nn.Linear(d, f),
        "output_dense": nn.Linear(f, d), "output_LayerNorm": nn.LayerNorm(d, eps=1e-12),
    })
    for prm in mods.parameters():
        nn.init.normal_(prm, std=0.3)
    x = rand(2, 7, d)
    mask = np.array([[1] * 7, [1, 1, 1, 1, 0, 0, 0]])
    with torch.no_grad():
        att = _mha_torch(torch, x, *[getattr(mods[f"attention_self_{n}"], a).detach().numpy()
                                     for n in ("query", "key", "value") for a in ("weight", "bias")],
                         mods["attention_output_dense"].weight.detach().numpy(),
                         mods["attention_output_dense"].bias.detach().numpy(),
                         heads, mask)
        h = mods["attention_output_LayerNorm"](T(att) + T(x))
        ffn = mods["output_dense"](F.gelu(mods["intermediate_dense"](h)))
        ref = mods["output_LayerNorm"](ffn + h).numpy()
    p = {"L." + k.replace("_", ".", 2 if k.startswith("attention") else 1): v.numpy()
         for k, v in mods.state_dict().items()}
    names = {"q": "L.attention.self.query", "k": "L.attention.self.key", "v": "L.attention.self.value",
             "o": "L.attention.output.dense", "ln1": "L.attention.output.LayerNorm", "fc1": "L.intermediate.dense",
             "fc2": "L.output.dense", "ln2": "L.output.LayerNorm"}
    graph, params = _block(p, names, prenorm=False, mask=mask, eps=1e-12, heads=heads, dim=d, mlp=f)
    got = run(graph, params, {"x": x, "mask": mask})[graph.outputs[0]]
    assert rel_err(got, ref) < RTOL
    assert rel_err(run(graph, params, {"x": x, "mask": np.ones_like(mask)})[graph.outputs[0]], ref) > 10 * RTOL


def test_weights_are_never_modified():
    x, w, b = rand(2, 3, 8, 8), rand(4, 3, 3, 3, seed=1), rand(4, seed=2)
    for a in (x, w, b):
        a.setflags(write=False)
    layers.conv2d(x, w, b, padding=1)
    layers.conv2d(rand(2, 4, 8, 8), rand(4, 1, 3, 3), b, padding=1, groups=4)
    layers.linear(rand(3, 3), rand(4, 3), b)
    assert math.isfinite(float(layers.gelu(x).sum()))


def test_warmup_compiles_every_runtime_kernel():
    """``info --warmup`` promises to compile every kernel of the runtime: the list cannot fall behind."""
    from wkbnoise.runtime import summary

    rows = summary.warmup()
    assert [r["kernel"] for r in rows] == list(_kernels.__all__)
    assert all(r["call_s"] >= 0 and r["first_call_s"] >= 0 and r["shape"] for r in rows)
