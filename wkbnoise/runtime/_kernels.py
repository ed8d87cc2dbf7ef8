"""Numba kernels of the runtime: im2col, depthwise convolution and the Winograd F(2x2, 3x3) transforms in the
channel-major (C, N, H, W) layout, max pooling over the last two axes, the row steps of a softmax and of a
LayerNorm, and the exact GELU.

Kernels take exact-dtype C-contiguous arrays and write into ``out``; :mod:`wkbnoise.runtime.layers`
validates, allocates and calls them. Each one has a NumPy twin in ``tests/reference.py``.
"""

from __future__ import annotations

import math

import numpy as np

from numba import njit, prange, uintp

__all__ = ["im2col_cnhw", "depthwise_conv_cnhw", "winograd_input_cnhw", "winograd_output_cnhw", "max_pool_hw",
           "softmax_shift_rows", "softmax_scale_rows",
           "center_rows", "scale_shift_rows", "gelu_erf"]


@njit(cache=True, nogil=True, inline="always")
def _inside(n_out, stride, shift, n_in):
    """Output positions ``[lo, hi)`` whose input index ``o * stride + shift`` lies in ``[0, n_in)``."""
    lo = 0
    while lo < n_out and lo * stride + shift < 0:
        lo += 1
    hi = n_out
    while hi > lo and (hi - 1) * stride + shift >= n_in:
        hi -= 1
    return lo, hi


@njit(cache=True, nogil=True)
def im2col_cnhw(x, n0, oh0, kh, kw, sh, sw, ph, pw, out):
    """x: float32[C, Nx, H, W]; out: float32[C*kh*kw, N, Hb, Wo], row (c, i, j), of the images
    ``n0 .. n0 + N - 1`` of ``x`` and the output rows ``oh0 .. oh0 + Hb - 1`` (a band; ``oh0 = 0`` and
    ``Hb = Ho`` for whole images); zero padding.

    Serial: it is memory-bound, and OpenMP threads would fight BLAS's for the cores. The ranges of output
    rows and columns that read inside the image are worked out once per row ``(c, i, j)``, so the copies
    have no per-element test. Indices are unsigned (``uintp``): a signed index costs a negative-index
    check per element, which keeps LLVM from vectorizing the copy (2x-4x, measured). With stride 1 and
    ``Wo == W`` the valid rows of a plane are one flat shifted copy, whose wrapped border columns are then
    set to zero.
    """
    C, Nx, H, W = x.shape
    R, N, Ho, Wo = out.shape
    xf = x.reshape(-1)
    of = out.reshape(-1)
    HW = H * W
    P = Ho * Wo
    zero = np.float32(0.0)
    for r in range(R):
        c = r // (kh * kw)
        i = (r // kw) % kh
        j = r % kw
        ish = oh0 * sh + i - ph  # input row of the band's output row 0
        lo, hi = _inside(Wo, sw, j - pw, W)  # output columns [lo, hi) and rows [top, bot) read inside
        top, bot = _inside(Ho, sh, ish, H)
        flat = sh == 1 and sw == 1 and Wo == W and bot > top
        d = ish * W + (j - pw)  # flat shift of the plane (flat case)
        a = top * Wo
        b = bot * Wo
        lo_c = max(a, -d)
        hi_c = max(lo_c, min(b, HW - d))
        m = hi - lo
        for n in range(N):
            ob = uintp((r * N + n) * P)
            xb = uintp((c * Nx + n0 + n) * HW)
            for p in range(uintp(a)):
                of[ob + p] = zero
            for p in range(uintp(b), uintp(P)):
                of[ob + p] = zero
            if flat:
                for p in range(uintp(a), uintp(lo_c)):
                    of[ob + p] = zero
                o0 = ob + uintp(lo_c)
                x0 = uintp(xb + lo_c + d)
                for p in range(uintp(hi_c - lo_c)):
                    of[o0 + p] = xf[x0 + p]
                for p in range(uintp(hi_c), uintp(b)):
                    of[ob + p] = zero
                for oh in range(uintp(top), uintp(bot)):
                    q = ob + oh * uintp(Wo)
                    for ow in range(uintp(lo)):
                        of[q + ow] = zero
                    for ow in range(uintp(hi), uintp(Wo)):
                        of[q + ow] = zero
            else:
                for oh in range(top, bot):
                    q = ob + uintp(oh * Wo)
                    x0 = uintp(xb + (oh * sh + ish) * W + lo * sw - pw + j)
                    for ow in range(uintp(lo)):
                        of[q + ow] = zero
                    q1 = q + uintp(lo)
                    if sw == 1:
                        for p in range(uintp(m)):
                            of[q1 + p] = xf[x0 + p]
                    else:
                        for p in range(uintp(m)):
                            of[q1 + p] = xf[x0 + p * uintp(sw)]
                    for ow in range(uintp(hi), uintp(Wo)):
                        of[q + ow] = zero


@njit(parallel=True, cache=True, nogil=True)
def depthwise_conv_cnhw(x, w, bias, sh, sw, ph, pw, out):
    """x: float32[C, N, H, W]; w: float32[C, 1, kh, kw]; bias: float32[C]; out: float32[C, N, Ho, Wo].

    Each output starts at its bias and adds ``w * x`` tap by tap in the order (i, j). As in im2col, the
    rows and columns that read inside the image are worked out once per tap and the planes are indexed
    flat with unsigned indices, so the inner loop has no per-element test and vectorizes. One thread,
    against 4-D signed indexing, same bits: 32 channels x 16 images at 48 x 48, 11.8 -> 1.1 ms; stride 2,
    6.2 -> 1.7 ms; 96 channels x 200 images at 14 x 14, 52.3 -> 7.8 ms; 128 x 200 at 7 x 7, 23.1 -> 6.2 ms.
    """
    C, N, H, W = x.shape
    kh, kw = w.shape[2], w.shape[3]
    Ho, Wo = out.shape[2], out.shape[3]
    xf = x.reshape(-1)
    of = out.reshape(-1)
    wf = w.reshape(-1)
    HW = H * W
    P = Ho * Wo
    # stride 1 with Wo == W: a tap reads the plane shifted by one flat offset, so it is one loop over the
    # plane that keeps the old value where the tap falls outside the image (``inside``, per tap and
    # position); small planes (7 x 7) then run a few long vector loops instead of a short one per row
    flat = sh == 1 and sw == 1 and Wo == W
    inside = np.zeros((kh * kw, P if flat else 0), dtype=np.bool_)
    if flat:
        for i in range(kh):
            top, bot = _inside(Ho, 1, i - ph, H)
            for j in range(kw):
                lo, hi = _inside(Wo, 1, j - pw, W)
                for oh in range(top, bot):
                    for ow in range(lo, hi):
                        inside[i * kw + j, oh * Wo + ow] = True
    for t in prange(C * N):
        c = t // N
        ob = uintp(t * P)
        xb = uintp(t * HW)
        b = bias[c]
        for p in range(uintp(P)):
            of[ob + p] = b
        for i in range(kh):
            top, bot = _inside(Ho, sh, i - ph, H)
            for j in range(kw):
                wv = wf[(c * kh + i) * kw + j]
                lo, hi = _inside(Wo, sw, j - pw, W)
                m = uintp(hi - lo)
                if flat:
                    if bot <= top or hi <= lo:
                        continue
                    d = (i - ph) * W + (j - pw)
                    p0 = max(top * Wo, -d)  # reads stay inside this plane
                    p1 = min(bot * Wo, HW - d)
                    if p1 <= p0:
                        continue
                    tap = inside[i * kw + j]
                    q = ob + uintp(p0)
                    x0 = xb + uintp(p0 + d)
                    for p in range(uintp(p1 - p0)):
                        o = of[q + p]
                        v = o + wv * xf[x0 + p]
                        of[q + p] = v if tap[uintp(p0) + p] else o
                    continue
                for oh in range(top, bot):
                    q = ob + uintp(oh * Wo + lo)
                    x0 = xb + uintp((oh * sh - ph + i) * W + lo * sw - pw + j)
                    if sw == 1:
                        for p in range(m):
                            of[q + p] += wv * xf[x0 + p]
                    else:
                        for p in range(m):
                            of[q + p] += wv * xf[x0 + p * uintp(sw)]


@njit(cache=True, nogil=True, inline="always")
def _bt_columns(r, j, out, k, c, t):
    """The column combinations of ``B^T`` of one row combination ``r`` at columns ``j .. j + 3``: elements
    ``k .. k + 3`` of a transformed tile."""
    out[k, c, t] = r[j] - r[j + 2]
    out[k + 1, c, t] = r[j + 1] + r[j + 2]
    out[k + 2, c, t] = r[j + 2] - r[j + 1]
    out[k + 3, c, t] = r[j + 1] - r[j + 3]


@njit(cache=True, nogil=True)
def winograd_input_cnhw(x, n0, ty0, tb, tw, ph, pw, pad, out):
    """Winograd F(2x2, 3x3) input tiles ``B^T d B`` of a (C, N, H, W) float32 array.

    x: float32[C, Nx, H, W]; out: float32[16, C, N tb tw]. Column ``(n tb + ty) tw + tx`` of ``out`` is
    the tile of image ``n0 + n`` at tile row ``ty0 + ty`` and column ``tx``: the 4 x 4 window of the plane,
    zero-padded by ``ph`` rows and ``pw`` columns, at rows ``2 (ty0 + ty) .. + 3`` and columns
    ``2 tx .. 2 tx + 3``, transformed; element ``(a, b)`` of the transformed tile is ``out[4 a + b]``, with
    ``B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]``. ``pad``: float32 scratch of at
    least ``(2 tb + 2) (2 tw + 2)`` elements.

    Per plane, the padded rows of the band are copied once; the row combinations of ``B^T`` are formed
    over whole padded rows (contiguous loops) and the column combinations read them at stride 2. Serial
    (the runtime runs its kernels on one thread); unsigned indices, as in :func:`im2col_cnhw`.
    """
    C, Nx, H, W = x.shape
    N = out.shape[2] // (tb * tw)
    Hb = 2 * tb + 2
    Wp = 2 * tw + 2
    zero = np.float32(0.0)
    a = np.empty(Wp, np.float32)
    b = np.empty(Wp, np.float32)
    e = np.empty(Wp, np.float32)
    f = np.empty(Wp, np.float32)
    xf = x.reshape(-1)
    for q in range(uintp(Hb * Wp)):  # the padding columns stay zero: only the image's columns are written
        pad[q] = zero
    for c in range(uintp(C)):
        for n in range(uintp(N)):
            xb = uintp((c * Nx + n0 + n) * H * W)
            for r in range(Hb):
                h = 2 * ty0 + r - ph  # input row of padded band row r
                q = uintp(r * Wp + pw)
                if 0 <= h < H:
                    xr = xb + uintp(h * W)
                    for w in range(uintp(W)):
                        pad[q + w] = xf[xr + w]
                else:
                    for w in range(uintp(W)):
                        pad[q + w] = zero
            for ty in range(uintp(tb)):
                r0 = uintp(2) * ty * uintp(Wp)
                r1 = r0 + uintp(Wp)
                r2 = r1 + uintp(Wp)
                r3 = r2 + uintp(Wp)
                for j in range(uintp(Wp)):
                    p0 = pad[r0 + j]
                    p1 = pad[r1 + j]
                    p2 = pad[r2 + j]
                    p3 = pad[r3 + j]
                    a[j] = p0 - p2
                    b[j] = p1 + p2
                    e[j] = p2 - p1
                    f[j] = p1 - p3
                t0 = (n * uintp(tb) + ty) * uintp(tw)
                for tx in range(uintp(tw)):
                    j = uintp(2) * tx
                    t = t0 + tx
                    _bt_columns(a, j, out, 0, c, t)
                    _bt_columns(b, j, out, 4, c, t)
                    _bt_columns(e, j, out, 8, c, t)
                    _bt_columns(f, j, out, 12, c, t)


@njit(cache=True, nogil=True)
def winograd_output_cnhw(m, bias, n0, ty0, tb, tw, out):
    """Winograd F(2x2, 3x3) output tiles ``A^T m A + bias`` into a (O, N, Ho, Wo) float32 array.

    m: float32[16, O, N tb tw], the products of transformed filters and tiles, columns ordered as in
    :func:`winograd_input_cnhw`; bias: float32[O]; out: float32[O, Nout, Ho, Wo]. Tile ``(ty, tx)`` of image
    ``n`` gives the outputs at rows ``2 (ty0 + ty) .. + 1`` and columns ``2 tx .. 2 tx + 1`` of image
    ``n0 + n``; those past ``Ho`` or ``Wo`` are dropped. ``A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]``.
    """
    O = m.shape[1]
    N = m.shape[2] // (tb * tw)
    Nout, Ho, Wo = out.shape[1], out.shape[2], out.shape[3]
    r0 = np.empty(2 * tw, np.float32)
    r1 = np.empty(2 * tw, np.float32)
    of = out.reshape(-1)
    for o in range(uintp(O)):
        bo = bias[o]
        for n in range(uintp(N)):
            ob = uintp((o * Nout + n0 + n) * Ho * Wo)
            for ty in range(uintp(tb)):
                t0 = (n * uintp(tb) + ty) * uintp(tw)
                for tx in range(uintp(tw)):
                    t = t0 + tx
                    s0 = m[0, o, t] + m[4, o, t] + m[8, o, t]
                    s1 = m[1, o, t] + m[5, o, t] + m[9, o, t]
                    s2 = m[2, o, t] + m[6, o, t] + m[10, o, t]
                    s3 = m[3, o, t] + m[7, o, t] + m[11, o, t]
                    u0 = m[4, o, t] - m[8, o, t] - m[12, o, t]
                    u1 = m[5, o, t] - m[9, o, t] - m[13, o, t]
                    u2 = m[6, o, t] - m[10, o, t] - m[14, o, t]
                    u3 = m[7, o, t] - m[11, o, t] - m[15, o, t]
                    k = uintp(2) * tx
                    r0[k] = s0 + s1 + s2 + bo
                    r0[k + 1] = s1 - s2 - s3 + bo
                    r1[k] = u0 + u1 + u2 + bo
                    r1[k + 1] = u1 - u2 - u3 + bo
                y = 2 * (ty0 + ty)
                if y < Ho:
                    q = ob + uintp(y * Wo)
                    for w in range(uintp(Wo)):
                        of[q + w] = r0[w]
                if y + 1 < Ho:
                    q = ob + uintp((y + 1) * Wo)
                    for w in range(uintp(Wo)):
                        of[q + w] = r1[w]


@njit(cache=True, nogil=True)
def max_pool_hw(x, kh, kw, sh, sw, pt, pl, out):
    """x: float32[B, H, W]; out: float32[B, Ho, Wo] = the max over each window, padding ``pt`` rows on top
    and ``pl`` columns on the left (and whatever the output size implies at the bottom and right) read as
    -inf.

    Separable: per output row, the max over the window's rows of each input column (contiguous, so it
    vectorizes), then the max over the window's columns of that row. A value replaces the running one
    when it is larger or NaN, as in PyTorch's kernel: NaN propagates; a tie of 0.0 and -0.0 may keep
    either sign. Serial, like im2col (chunks run side by side on their own threads).
    """
    B, H, W = x.shape
    Ho, Wo = out.shape[1], out.shape[2]
    ninf = np.float32(-np.inf)
    row = np.empty(W, dtype=np.float32)
    for b in range(B):
        for oh in range(Ho):
            for w in range(W):
                row[w] = ninf
            for i in range(kh):
                ih = oh * sh - pt + i
                if ih < 0 or ih >= H:
                    continue
                for w in range(W):
                    v = x[b, ih, w]
                    o = row[w]
                    row[w] = v if (v > o or v != v) else o
            for ow in range(Wo):
                out[b, oh, ow] = ninf
            for j in range(kw):
                lo, hi = _inside(Wo, sw, j - pl, W)
                for ow in range(lo, hi):
                    v = row[ow * sw - pl + j]
                    o = out[b, oh, ow]
                    out[b, oh, ow] = v if (v > o or v != v) else o


@njit(cache=True, nogil=True)
def softmax_shift_rows(x):
    """x: float32[R, n], in place: every row minus its maximum (``x - x.max(-1, keepdims=True)``, the first
    step of a softmax). A row that holds a NaN has a NaN maximum, as in NumPy."""
    R, n = x.shape
    xf = x.reshape(-1)
    ninf = np.float32(-np.inf)
    lanes = np.empty(8, dtype=np.float32)
    for r in range(R):
        a = uintp(r) * uintp(n)
        # eight running maxima, selected without a branch so that the loop vectorizes; NaNs counted apart
        for k in range(8):
            lanes[k] = ninf
        nan = 0
        i = uintp(0)
        while i + uintp(8) <= uintp(n):
            for k in range(8):
                v = xf[a + i + uintp(k)]
                lanes[k] = v if v > lanes[k] else lanes[k]
                nan += v != v
            i += uintp(8)
        m = ninf
        for k in range(8):
            m = lanes[k] if lanes[k] > m else m
        while i < uintp(n):
            v = xf[a + i]
            m = v if v > m else m
            nan += v != v
            i += uintp(1)
        if nan:
            m = np.float32(np.nan)
        for i in range(uintp(n)):
            xf[a + i] = xf[a + i] - m


@njit(cache=True, nogil=True)
def _pairwise_sum(xf, a, n):
    """Sum of ``xf[a:a + n]`` (float32) in NumPy's pairwise order (``FLOAT_pairwise_sum``): eight running
    sums over blocks of up to 128 values, halves above that."""
    if n < 8:
        res = np.float32(0.0)
        for i in range(n):
            res += xf[a + i]
        return res
    if n <= 128:
        r0, r1, r2, r3 = xf[a], xf[a + 1], xf[a + 2], xf[a + 3]
        r4, r5, r6, r7 = xf[a + 4], xf[a + 5], xf[a + 6], xf[a + 7]
        i = 8
        while i < n - n % 8:
            b = a + i
            r0 += xf[b]
            r1 += xf[b + 1]
            r2 += xf[b + 2]
            r3 += xf[b + 3]
            r4 += xf[b + 4]
            r5 += xf[b + 5]
            r6 += xf[b + 6]
            r7 += xf[b + 7]
            i += 8
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while i < n:
            res += xf[a + i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _pairwise_sum(xf, a, n2) + _pairwise_sum(xf, a + n2, n - n2)


@njit(cache=True, nogil=True, error_model="numpy")
def softmax_scale_rows(x):
    """x: float32[R, n] (the exponentials), in place: every row divided by its sum, the sum taken as
    ``x.sum(-1)`` takes it (zero plus NumPy's pairwise sum of the row), so the result equals
    ``x / x.sum(-1, keepdims=True)`` bit for bit. A zero sum gives inf or NaN, as in NumPy
    (``error_model="numpy"``: no zero check, whose branch would keep the division loop scalar)."""
    R, n = x.shape
    xf = x.reshape(-1)
    for r in range(R):
        a = r * n
        s = np.float32(0.0) + _pairwise_sum(xf, a, n)
        for i in range(uintp(n)):
            xf[uintp(a) + i] = xf[uintp(a) + i] / s


@njit(cache=True, nogil=True)
def center_rows(x, out):
    """x, out: float32[R, n]; out = every row minus its mean, bit for bit ``x - x.mean(-1, keepdims=True,
    dtype=float32)``: the mean is NumPy's (zero plus the pairwise sum, divided by the count in float64 and
    rounded to float32, as ``np.mean`` divides a float32 sum by an ``intp`` count)."""
    R, n = x.shape
    xf = x.reshape(-1)
    of = out.reshape(-1)
    for r in range(R):
        a = r * n
        mu = np.float32(np.float64(np.float32(0.0) + _pairwise_sum(xf, a, n)) / np.float64(n))
        for i in range(uintp(n)):
            of[uintp(a) + i] = xf[uintp(a) + i] - mu


@njit(cache=True, nogil=True)
def scale_shift_rows(x, scale, w, b):
    """x: float32[R, n], in place: ``(x * scale[r]) * w + b`` per row ``r`` (scale: float32[R]; w, b:
    float32[n]), rounded after each operation as the three NumPy statements ``x *= scale; x *= w; x += b``
    round (no fused multiply-add)."""
    R, n = x.shape
    xf = x.reshape(-1)
    for r in range(R):
        a = uintp(r) * uintp(n)
        s = scale[r]
        for i in range(uintp(n)):
            xf[a + i] = xf[a + i] * s * w[i] + b[i]


#: erf(t) ~ t P(t^2) / Q(t^2) on [-4, 4] (Eigen's float32 rational approximation; |erf(4)| rounds to 1 in float32)
_ERF_P = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
          -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02)
_ERF_Q = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
          -1.42647390514189e-02)


@njit(cache=True, nogil=True, error_model="numpy")
def gelu_erf(x, out):
    """out = 0.5 x (1 + erf(x / sqrt 2)) with a float32 rational erf; x, out: float32[n] (may be the same array).

    Branch-free, so it vectorizes (AVX-512 where the CPU has it): ``error_model="numpy"`` lets the division
    by ``q`` (never zero: ``q <= -0.0142``) go without Python's zero check, whose branch kept the loop scalar
    (11.6x, same bits). Absolute error below 4e-7 (|x| + 1)
    (PyTorch's float32 GELU: of the same order); relative error is large only where 1 + erf cancels, i.e.
    where the result itself is below about 1e-6.
    """
    p0, p1, p2, p3, p4, p5, p6 = _ERF_P
    q0, q1, q2, q3, q4 = _ERF_Q
    for i in range(x.shape[0]):
        v = x[i]
        t = min(max(v * np.float32(0.7071067811865476), np.float32(-4.0)), np.float32(4.0))
        t2 = t * t
        p = t2 * np.float32(p0) + np.float32(p1)
        p = t2 * p + np.float32(p2)
        p = t2 * p + np.float32(p3)
        p = t2 * p + np.float32(p4)
        p = t2 * p + np.float32(p5)
        p = t2 * p + np.float32(p6)
        q = t2 * np.float32(q0) + np.float32(q1)
        q = t2 * q + np.float32(q2)
        q = t2 * q + np.float32(q3)
        q = t2 * q + np.float32(q4)
        out[i] = np.float32(0.5) * v * (np.float32(1.0) + t * p / q)
