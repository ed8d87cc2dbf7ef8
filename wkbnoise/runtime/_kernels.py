"""Numba kernels of the runtime: im2col and depthwise convolution in the channel-major (C, N, H, W) layout.

Kernels take exact-dtype C-contiguous arrays and write into ``out``; :mod:`wkbnoise.runtime.layers`
validates, allocates and calls them. Each one has a NumPy twin in ``tests/reference.py``.
"""

from __future__ import annotations

import math

from numba import njit, prange

__all__ = ["im2col_cnhw", "depthwise_conv_cnhw", "gelu_erf"]


@njit(cache=True, nogil=True)
def im2col_cnhw(x, kh, kw, sh, sw, ph, pw, out):
    """x: float32[C, N, H, W]; out: float32[C*kh*kw, N, Ho, Wo], row (c, i, j); zero padding."""
    C, N, H, W = x.shape
    R, _, Ho, Wo = out.shape
    for t in range(R * N):  # serial: memory-bound, and no OpenMP threads fighting BLAS's for the cores
        r = t // N
        n = t - r * N
        c = r // (kh * kw)
        i = (r // kw) % kh
        j = r % kw
        for oh in range(Ho):
            ih = oh * sh - ph + i
            if ih < 0 or ih >= H:
                for ow in range(Wo):
                    out[r, n, oh, ow] = 0.0
                continue
            for ow in range(Wo):
                iw = ow * sw - pw + j
                if iw < 0 or iw >= W:
                    out[r, n, oh, ow] = 0.0
                else:
                    out[r, n, oh, ow] = x[c, n, ih, iw]


@njit(parallel=True, cache=True, nogil=True)
def depthwise_conv_cnhw(x, w, bias, sh, sw, ph, pw, out):
    """x: float32[C, N, H, W]; w: float32[C, 1, kh, kw]; bias: float32[C]; out: float32[C, N, Ho, Wo]."""
    C, N, H, W = x.shape
    kh, kw = w.shape[2], w.shape[3]
    Ho, Wo = out.shape[2], out.shape[3]
    for t in prange(C * N):
        c = t // N
        n = t - c * N
        b = bias[c]
        for oh in range(Ho):
            for ow in range(Wo):
                out[c, n, oh, ow] = b
        for i in range(kh):
            for j in range(kw):
                wv = w[c, 0, i, j]
                lo = 0
                while lo < Wo and lo * sw - pw + j < 0:
                    lo += 1
                hi = Wo
                while hi > lo and (hi - 1) * sw - pw + j >= W:
                    hi -= 1
                for oh in range(Ho):
                    ih = oh * sh - ph + i
                    if ih < 0 or ih >= H:
                        continue
                    for ow in range(lo, hi):
                        out[c, n, oh, ow] += wv * x[c, n, ih, ow * sw - pw + j]


@njit(cache=True, nogil=True)
def gelu_erf(x, out):
    """out = 0.5 x (1 + erf(x / sqrt 2)), erf in float64; x, out: float32[n] (may be the same array)."""
    for i in range(x.shape[0]):
        v = float(x[i])
        out[i] = 0.5 * v * (1.0 + math.erf(v * 0.7071067811865476))
