"""Network layers as pure functions over float32 arrays (NCHW images, (N, T, D) token sequences).

Every function reads its weights as arguments and never modifies them; the PyTorch layouts are kept
(conv weight ``(C_out, C_in / groups, kh, kw)``, linear weight ``(out, in)``). Each layer matches
``torch.nn.functional`` (``tests/test_layers.py``).

The graph walk (:mod:`wkbnoise.runtime.graph`) keeps image activations in a channel-major ``(C, N, H, W)``
layout ("CNHW"): a convolution is then one BLAS matrix product ``W (C_out, C_in kh kw) @ cols (C_in kh kw,
N Ho Wo)`` that reads the PyTorch weight as it is stored and writes the next layer's input directly.
The ``*_cnhw`` functions are that internal form; the public NCHW functions wrap them.
"""

from __future__ import annotations

import math

import numpy as np

from . import _kernels

__all__ = [
    "conv2d", "linear", "relu", "relu6", "gelu", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
    "flatten", "add", "layer_norm", "softmax", "attention", "attention_bias",
]

_F32 = np.float32


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def _out_size(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - k) // s + 1


# ---------------------------------------------------------------------------------------------------------
# internal channel-major (C, N, H, W) forms
# ---------------------------------------------------------------------------------------------------------
def im2col_cnhw(x, kernel, stride, padding, buffers=None, images=None, rows=None):
    """Columns ``(C kh kw, N Ho Wo)`` of a (C, N, H, W) float32 array, rows ordered (c, i, j) like PyTorch.

    ``images`` = ``(n0, n1)`` takes the columns of images ``n0 .. n1 - 1`` only (read in place, no copy);
    ``rows`` = ``(r0, r1)`` those of the output rows ``r0 .. r1 - 1`` only (a band of each image).
    ``buffers`` (a dict, optional) lends one reusable work array (key ``"cols"``, grown when a call needs
    more): a fresh allocation of the columns costs more in page faults than the copy itself (3x, measured
    at batch 200; a VGG forward of one image took 301 page faults with fresh columns, none with lent ones).
    The result is then a view of that array and lives only until the next call with the same ``buffers``.
    """
    C, N, H, W = x.shape
    n0, n1 = (0, N) if images is None else images
    N = n1 - n0
    kh, kw = kernel
    sh, sw = stride
    ph, pw = padding
    Ho, Wo = _out_size(H, kh, sh, ph), _out_size(W, kw, sw, pw)
    r0, r1 = (0, Ho) if rows is None else rows
    shape = (C * kh * kw, N, r1 - r0, Wo)
    size = math.prod(shape)
    work = None if buffers is None else buffers.get("cols")
    if work is None or work.size < size:
        work = np.empty(size, dtype=_F32)
        if buffers is not None:
            buffers["cols"] = work
    cols = work[:size].reshape(shape)
    _kernels.im2col_cnhw(x, n0, r0, kh, kw, sh, sw, ph, pw, cols)
    return cols.reshape(C * kh * kw, N * (r1 - r0) * Wo)


#: im2col columns per GEMM [bytes]: the images of a batch go through im2col + GEMM in chunks whose columns
#: stay in cache, instead of one batch-sized column matrix that is written to and read back from memory
COLS_CHUNK_BYTES = 4 << 20

#: im2col columns per GEMM [bytes] when one image's columns exceed ``COLS_CHUNK_BYTES`` (224 x 224 inputs)
#: and the BLAS library runs one thread: the image goes through in bands of output rows. On one thread
#: (OpenBLAS's SkylakeX kernel, 15 alternating calls) a 64-channel 3x3 layer at 56 x 56 (7.2 MB of columns
#: per image) took 13.1 ms for 3 images in bands of 2 MiB against 15.8 ms whole, and ResNet-18's 7 x 7 stem
#: 12.6 against 14.6 ms. On two BLAS threads bands were slower (2.6 -> 3.8 ms for one image): their GEMMs
#: are too small to split well, so multi-threaded calls keep whole images. The sums are the same either way
#: (for ResNet-18, bit for bit from 512 KiB bands to whole images).
COLS_BAND_BYTES = 2 << 20


def _conv_chunked(x, w, b, kernel, stride, padding, out_hw, chunk, buffers):
    """``conv2d_cnhw`` (groups 1) over chunks of ``chunk`` images, or with ``chunk = 0`` over bands of
    output rows of one image at a time: the same sums, in cache-sized pieces."""
    C, N = x.shape[:2]
    O = w.shape[0]
    Ho, Wo = out_hw
    w2 = w.reshape(O, -1)
    P = Ho * Wo
    out = np.empty((O, N, Ho, Wo), dtype=_F32)
    out2 = out.reshape(O, N * P)
    if chunk:
        pieces = [((n0, min(N, n0 + chunk)), None) for n0 in range(0, N, chunk)]
    else:
        band = max(1, COLS_BAND_BYTES // (4 * w2.shape[1] * Wo))
        pieces = [((n, n + 1), (r0, min(Ho, r0 + band))) for n in range(N) for r0 in range(0, Ho, band)]
    for (n0, n1), rows in pieces:
        cols = im2col_cnhw(x, kernel, stride, padding, buffers, images=(n0, n1), rows=rows)
        a = n0 * P + (0 if rows is None else rows[0] * Wo)
        part = out2[:, a:a + cols.shape[1]]  # rows of stride N P: BLAS writes them in place (its ldc)
        np.matmul(w2, cols, out=part)
        if b is not None:
            part += b[:, None]
    return out


#: Winograd F(2x2, 3x3): ``G`` of the filter transform ``U = G g G^T`` (Lavin and Gray, 2016)
_WINOGRAD_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]], dtype=_F32)
#: ``U = K g`` flattened: element ``(a, b)`` of ``U`` is row ``4 a + b`` of ``K = G (x) G`` times ``g``
_WINOGRAD_K = np.kron(_WINOGRAD_G, _WINOGRAD_G)

#: transformed tiles and products per GEMM [bytes] of a Winograd convolution: the images of a chunk (or
#: the tile rows of a band of one image) go through input transform, GEMMs and output transform while
#: they stay in cache, but each GEMM gets at least ``WINOGRAD_MIN_TILES`` tiles (columns) when the batch
#: has them: narrower GEMMs of wide layers run far below the BLAS library's speed
WINOGRAD_CHUNK_BYTES = 2 << 20
WINOGRAD_MIN_TILES = 192

#: smallest input channels, output channels and output side of a 3 x 3, stride-1 convolution that runs as
#: Winograd F(2x2, 3x3) rather than im2col + GEMM: its 2.25x fewer multiplies pay for the transforms only
#: on enough channels (16 -> 16 at 28 x 28: 1.00x) and a large enough plane (a 7 x 7 output wastes 23 % of
#: its 4 x 4 tiles, and still gained 1.38x at 64 channels). See docs/performance.md for the measured layers.
WINOGRAD_MIN_CHANNELS = 32
WINOGRAD_MIN_SIDE = 7

#: fewest multiply-adds of each of the 16 products of a call that runs as Winograd (tiles x C x O, tiles =
#: ``N ceil(Ho / 2) ceil(Wo / 2)``): a small call (one image of VGG) is split into 16 GEMMs too small for
#: the BLAS library to run on more than one thread, where im2col's one GEMM uses them all (VGG at batch 1 on
#: two threads: 0.81 -> 1.16 ms per image with Winograd). A call also needs ``WINOGRAD_MIN_CALL_TILES``
#: tiles: one 224 x 224 image's 512-channel 7 x 7 layer (16 tiles) reaches 2^22, but its 16 products of 16
#: columns made ResNet-18 at batch 1 run at 20.3 images/s against 30.5 without them
WINOGRAD_MIN_CALL_WORK = 1 << 22
WINOGRAD_MIN_CALL_TILES = 64


def winograd_filters(w: np.ndarray) -> np.ndarray:
    """The transformed 3 x 3 filters ``U = G g G^T`` of ``w`` (O, C, 3, 3): float32 (16, O, C), element
    ``(a, b)`` of each 4 x 4 ``U`` in row ``4 a + b``. One (16, 9) x (9, O C) product."""
    O, C = w.shape[:2]
    w9 = np.ascontiguousarray(w, dtype=_F32).reshape(O * C, 9)
    return np.matmul(_WINOGRAD_K, w9.T).reshape(16, O, C)


def _winograd_pays(C: int, N: int, O: int, Ho: int, Wo: int) -> bool:
    """Whether a 3 x 3, stride-1 call runs as Winograd: by the layer's shape and the call's size, never by
    the thread count, so that a chunk's outputs are the same at every thread count."""
    tiles = N * ((Ho + 1) // 2) * ((Wo + 1) // 2)
    return (min(C, O) >= WINOGRAD_MIN_CHANNELS and min(Ho, Wo) >= WINOGRAD_MIN_SIDE
            and tiles >= WINOGRAD_MIN_CALL_TILES and tiles * C * O >= WINOGRAD_MIN_CALL_WORK)


#: float32 elements between the end of one of the 16 planes of Winograd tiles (or products) and the start
#: of the next: with planes of a power-of-two size the 16 streams that the transforms write and read fall
#: into the same cache sets. ResNet-20's 7 x 7 layer (64 channels, 16 images: 65,536-byte planes) took
#: 0.92 ms for its input transform packed and 0.16 ms skewed, its output transform 0.24 and 0.10 ms.
_SKEW = 16


def _skewed(buf: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """A (16, rows, cols) float32 view of ``buf`` whose 16 planes start ``rows * cols + _SKEW`` apart."""
    stride = rows * cols + _SKEW
    return buf[:16 * stride].reshape(16, stride)[:, :rows * cols].reshape(16, rows, cols)


def conv3x3_winograd_cnhw(x, w, b=None, *, padding=(1, 1), buffers=None):
    """3 x 3, stride-1 convolution of a (C, N, H, W) float32 array by Winograd F(2x2, 3x3); returns
    (O, N, Ho, Wo) float32.

    Each 2 x 2 block of outputs is ``A^T [U (.) (B^T d B)] A`` of the 4 x 4 input window ``d`` at its top
    left: the 16 elements of the transformed tiles are 16 GEMMs ``U[k] (O, C) x V[k] (C, tiles)``, 4
    multiplies per output and input channel instead of 9. The sums differ from im2col + GEMM's by float32
    rounding only (about one ``eps`` of the terms of the output's tile; up to 3.4e-7 relative on the zoo's
    logits, with the same predictions on all 1,000 test images). Images go through in chunks of
    ``WINOGRAD_CHUNK_BYTES`` of tiles and products, or one image in bands of tile rows; ``buffers`` lends
    the work arrays (keys ``"wino_v"``, ``"wino_m"``, ``"wino_pad"``).
    """
    C, N, H, W = x.shape
    O = w.shape[0]
    ph, pw = padding
    Ho, Wo = H + 2 * ph - 2, W + 2 * pw - 2
    th, tw = (Ho + 1) // 2, (Wo + 1) // 2
    u = winograd_filters(w)
    bias = np.zeros(O, _F32) if b is None else np.ascontiguousarray(b, _F32)
    out = np.empty((O, N, Ho, Wo), dtype=_F32)
    per_row = 16 * (C + O) * tw * 4  # bytes of one tile row of one image
    if per_row * th <= WINOGRAD_CHUNK_BYTES:
        chunk = max(WINOGRAD_CHUNK_BYTES // (per_row * th), -(-WINOGRAD_MIN_TILES // (th * tw)))
        pieces = [(n0, min(N, n0 + chunk), 0, th) for n0 in range(0, N, chunk)]
        rows = th
    else:
        rows = min(th, max(WINOGRAD_CHUNK_BYTES // per_row, -(-WINOGRAD_MIN_TILES // tw)))
        pieces = [(n, n + 1, t0, min(th, t0 + rows)) for n in range(N) for t0 in range(0, th, rows)]
    most = max((n1 - n0) * (t1 - t0) * tw for n0, n1, t0, t1 in pieces)
    bufs = {} if buffers is None else buffers
    work = {}
    sizes = {"wino_v": 16 * (C * most + _SKEW), "wino_m": 16 * (O * most + _SKEW),
             "wino_pad": (2 * rows + 2) * (2 * tw + 2)}
    for key, size in sizes.items():
        a = bufs.get(key)
        if a is None or a.size < size:
            a = np.empty(size, dtype=_F32)
            bufs[key] = a
        work[key] = a
    xc = np.ascontiguousarray(x, dtype=_F32)
    for n0, n1, t0, t1 in pieces:
        tb = t1 - t0
        cols = (n1 - n0) * tb * tw
        v = _skewed(work["wino_v"], C, cols)
        m = _skewed(work["wino_m"], O, cols)
        _kernels.winograd_input_cnhw(xc, n0, t0, tb, tw, ph, pw, work["wino_pad"], v)
        np.matmul(u, v, out=m)
        _kernels.winograd_output_cnhw(m, bias, n0, t0, tb, tw, out)
    return out


def conv2d_cnhw(x, w, b=None, *, stride=1, padding=0, groups=1, cols=None, buffers=None, bands=False):
    """Convolution of a (C, N, H, W) array; returns (C_out, N, Ho, Wo).

    ``cols`` reuses a cached im2col of ``x``; ``buffers`` lends reusable im2col arrays (:func:`im2col_cnhw`).
    ``bands``: the BLAS library runs one thread, so an image whose columns exceed ``COLS_CHUNK_BYTES``
    goes through in bands of output rows (``COLS_BAND_BYTES``): the same sums, in cache-sized pieces.

    A 3 x 3, stride-1 convolution of enough channels and plane (``WINOGRAD_MIN_CHANNELS``,
    ``WINOGRAD_MIN_SIDE``) in a large enough call (``WINOGRAD_MIN_CALL_WORK``) runs as Winograd F(2x2, 3x3)
    (:func:`conv3x3_winograd_cnhw`; the same sums up to float32 rounding). The choice never depends on
    ``bands`` or the thread count.
    """
    C, N, H, W = x.shape
    O, Cg, kh, kw = w.shape
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    Ho, Wo = _out_size(H, kh, sh, ph), _out_size(W, kw, sw, pw)
    if groups == 1:
        if cols is None and kh == kw == 3 and sh == sw == 1 and _winograd_pays(C, N, O, Ho, Wo):
            return conv3x3_winograd_cnhw(x, w, b, padding=(ph, pw), buffers=buffers)
        if cols is None:
            if kh == kw == 1 and sh == sw == 1 and ph == pw == 0:
                cols = x.reshape(C, N * H * W)
            else:
                chunk = COLS_CHUNK_BYTES // (4 * C * kh * kw * Ho * Wo)  # 0: one image in bands of rows
                if chunk == 0 and not bands:
                    chunk = 1  # on the BLAS library's threads, whole images
                if chunk < N:
                    return _conv_chunked(x, w, b, (kh, kw), (sh, sw), (ph, pw), (Ho, Wo), chunk, buffers)
                cols = im2col_cnhw(x, (kh, kw), (sh, sw), (ph, pw), buffers)
        out = np.dot(w.reshape(O, Cg * kh * kw), cols)
        if b is not None:
            out += b[:, None]
        return out.reshape(O, N, Ho, Wo)
    if groups == C == O and Cg == 1:
        out = np.empty((O, N, Ho, Wo), dtype=_F32)
        bias = np.zeros(O, _F32) if b is None else np.ascontiguousarray(b, _F32)
        _kernels.depthwise_conv_cnhw(np.ascontiguousarray(x), np.ascontiguousarray(w), bias, sh, sw, ph, pw, out)
        return out
    cin, cout = C // groups, O // groups
    parts = [
        conv2d_cnhw(np.ascontiguousarray(x[g * cin:(g + 1) * cin]), w[g * cout:(g + 1) * cout],
                    None if b is None else b[g * cout:(g + 1) * cout], stride=stride, padding=padding)
        for g in range(groups)
    ]
    return np.concatenate(parts, axis=0)


def _windows(x, kernel, stride, padding, fill):
    """The kh*kw strided views of (..., H, W) whose elementwise reduction is a pooling; pad value ``fill``."""
    kh, kw = _pair(kernel)
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    H, W = x.shape[-2:]
    Ho, Wo = _out_size(H, kh, sh, ph), _out_size(W, kw, sw, pw)
    if ph or pw:
        xp = np.full(x.shape[:-2] + (H + 2 * ph, W + 2 * pw), fill, dtype=_F32)
        xp[..., ph:ph + H, pw:pw + W] = x
        x = xp
    return [x[..., i:i + sh * (Ho - 1) + 1:sh, j:j + sw * (Wo - 1) + 1:sw] for i in range(kh) for j in range(kw)]


def max_pool_cnhw(x, kernel, stride, padding=0):
    """Max pooling over the last two axes of (..., H, W) (padding counts as -inf, as in PyTorch).

    ``padding`` is ``p``, ``(ph, pw)`` or ``(top, left, bottom, right)`` (ONNX's ``pads`` order).
    """
    kh, kw = _pair(kernel)
    sh, sw = _pair(stride)
    pads = (padding,) * 4 if np.isscalar(padding) else tuple(padding)
    pt, pl, pb, pr = pads * 2 if len(pads) == 2 else pads
    H, W = x.shape[-2:]
    Ho, Wo = (H + pt + pb - kh) // sh + 1, (W + pl + pr - kw) // sw + 1
    out = np.empty(x.shape[:-2] + (Ho, Wo), dtype=_F32)
    xs = np.ascontiguousarray(x, dtype=_F32).reshape(-1, H, W)
    _kernels.max_pool_hw(xs, kh, kw, sh, sw, int(pt), int(pl), out.reshape(-1, Ho, Wo))
    return out


def avg_pool_cnhw(x, kernel, stride, padding=0):
    """Average pooling over the last two axes (zero padding counted in the divisor, as PyTorch's default)."""
    views = _windows(x, kernel, stride, padding, 0.0)
    out = views[0].copy()
    for v in views[1:]:
        out += v
    out *= _F32(1.0 / len(views))
    return out


def adaptive_avg_pool_cnhw(x, output_size):
    """Adaptive average pooling over the last two axes with PyTorch's bins [floor(iH/o), ceil((i+1)H/o))."""
    oh, ow = _pair(output_size)
    H, W = x.shape[-2:]
    if oh == ow == 1:
        return x.mean(axis=(-2, -1), dtype=_F32, keepdims=True)
    out = np.empty(x.shape[:-2] + (oh, ow), dtype=_F32)
    for i in range(oh):
        h0, h1 = (i * H) // oh, -(-((i + 1) * H) // oh)
        for j in range(ow):
            w0, w1 = (j * W) // ow, -(-((j + 1) * W) // ow)
            out[..., i, j] = x[..., h0:h1, w0:w1].mean(axis=(-2, -1), dtype=_F32)
    return out


# ---------------------------------------------------------------------------------------------------------
# public NCHW / token functions
# ---------------------------------------------------------------------------------------------------------
def _nchw_to_cnhw(x):
    return np.ascontiguousarray(np.asarray(x, dtype=_F32).transpose(1, 0, 2, 3))


def _cnhw_to_nchw(x):
    return np.ascontiguousarray(x.transpose(1, 0, 2, 3))


def conv2d(x, w, b=None, *, stride=1, padding=0, groups=1):
    """2-D convolution (cross-correlation), as ``torch.nn.functional.conv2d``.

    Parameters
    ----------
    x : ndarray of float32, shape (N, C_in, H, W)
        Input images.
    w : ndarray of float32, shape (C_out, C_in / groups, kh, kw)
        Kernel.
    b : ndarray of float32, shape (C_out,), optional
        Bias.
    stride, padding : int or (int, int)
        Stride and zero padding [pixels].
    groups : int
        Channel groups (``groups = C_in = C_out``: depthwise).

    Returns
    -------
    ndarray of float32, shape (N, C_out, Ho, Wo)
    """
    return _cnhw_to_nchw(conv2d_cnhw(_nchw_to_cnhw(x), w, b, stride=stride, padding=padding, groups=groups))


def linear(x, w, b=None):
    """``x @ w.T + b`` over the last axis of ``x`` (``w``: (out, in), PyTorch layout); float32."""
    if x.ndim == 2:
        out = np.dot(x, w.T)
    else:
        out = np.dot(x.reshape(-1, x.shape[-1]), w.T).reshape(x.shape[:-1] + (w.shape[0],))
    if b is not None:
        out += b
    return out


def relu(x):
    """max(x, 0), float32."""
    return np.maximum(x, _F32(0))


def relu6(x):
    """min(max(x, 0), 6), float32."""
    return np.clip(x, _F32(0), _F32(6))


def gelu(x, approximate: str = "none"):
    """GELU ``0.5 x (1 + erf(x / sqrt 2))``, erf to float32 accuracy (``approximate="tanh"``: the tanh form of HF
    ``gelu_new``)."""
    x = np.asarray(x, dtype=_F32)
    if approximate == "tanh":
        c = _F32(math.sqrt(2.0 / math.pi))
        return _F32(0.5) * x * (_F32(1) + np.tanh(c * (x + _F32(0.044715) * x * x * x)))
    flat = np.ascontiguousarray(x).reshape(-1)
    out = np.empty_like(flat)
    _kernels.gelu_erf(flat, out)  # serial: a few ms, and no thread pool to wake between two GEMMs
    return out.reshape(x.shape)


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max pooling of (N, C, H, W), as ``F.max_pool2d`` (``stride`` defaults to ``kernel_size``)."""
    return max_pool_cnhw(np.asarray(x, _F32), kernel_size, kernel_size if stride is None else stride, padding)


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Average pooling of (N, C, H, W), as ``F.avg_pool2d`` (padding counted in the divisor)."""
    return avg_pool_cnhw(np.asarray(x, _F32), kernel_size, kernel_size if stride is None else stride, padding)


def adaptive_avg_pool2d(x, output_size):
    """Adaptive average pooling of (N, C, H, W), as ``F.adaptive_avg_pool2d``."""
    return adaptive_avg_pool_cnhw(np.asarray(x, _F32), output_size)


def flatten(x, start_dim: int = 1):
    """Merge the axes from ``start_dim`` on, in C order (as ``torch.flatten``)."""
    return np.ascontiguousarray(x).reshape(x.shape[:start_dim] + (-1,))


def add(x, y):
    """Residual addition ``x + y``."""
    return np.add(x, y)


def layer_norm(x, w, b, eps: float = 1e-5):
    """LayerNorm over the last axis (biased variance, as ``F.layer_norm``); float32.

    The centring and the final scale and shift run as row kernels, the variance as NumPy's ``einsum``; the
    result is bit for bit that of the NumPy statements (``mean``, ``x - mu``, ``einsum``, ``xc *= 1 /
    sqrt(var + eps)``, ``*= w``, ``+= b``), which cost a pass each and are slow on short rows. ViT rows
    (3,400 of 64), one thread: 0.42 ms in NumPy.
    """
    x = np.asarray(x)
    D = x.shape[-1]
    if not (x.dtype == _F32 and x.size and np.asarray(w).dtype == _F32 and np.asarray(b).dtype == _F32
            and np.shape(w) == (D,) and np.shape(b) == (D,)):
        return _layer_norm_numpy(x, w, b, eps)
    rows = np.ascontiguousarray(x).reshape(-1, D)
    xc = np.empty_like(rows)
    _kernels.center_rows(rows, xc)
    var = np.einsum("...i,...i->...", xc, xc) * _F32(1.0 / D)
    r = 1.0 / np.sqrt(var + _F32(eps))
    _kernels.scale_shift_rows(xc, r, np.ascontiguousarray(w), np.ascontiguousarray(b))
    return xc.reshape(x.shape)


def _layer_norm_numpy(x, w, b, eps):
    mu = x.mean(axis=-1, keepdims=True, dtype=_F32)
    xc = x - mu
    var = np.einsum("...i,...i->...", xc, xc)[..., None] * _F32(1.0 / x.shape[-1])
    xc *= 1.0 / np.sqrt(var + _F32(eps))
    xc *= w
    xc += b
    return xc


def softmax(x, axis: int = -1):
    """Softmax along ``axis``, max-shifted; float32.

    ``exp(x - max) / sum``: along the last axis of a float32 array the max shift and the division run as
    row kernels (the same bits as NumPy's reductions, which are slow on short rows), else in NumPy.
    """
    x = np.asarray(x)
    if x.dtype == _F32 and x.size and axis in (-1, x.ndim - 1):
        return _softmax_rows(np.array(x, dtype=_F32, order="C"))
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def _softmax_rows(e):
    """Softmax along the last axis of the C-contiguous float32 array ``e``, in place; returns ``e``.

    Bit for bit ``np.exp(x - x.max(-1, keepdims=True))`` divided by its ``sum(-1, keepdims=True)``: the
    maximum is exact in any order, NumPy computes the exponentials, and the row sums follow NumPy's
    pairwise order (:func:`_kernels.softmax_scale_rows`). ViT attention scores (13,600 rows of 17), one
    thread: 0.43 ms against 1.14 for the NumPy expression.
    """
    rows = e.reshape(-1, e.shape[-1])
    _kernels.softmax_shift_rows(rows)
    np.exp(rows, out=rows)
    _kernels.softmax_scale_rows(rows)
    return e


def attention_bias(attention_mask):
    """Additive mask (N, 1, 1, T): 0 where ``attention_mask`` is 1, float32 min where it is 0 (as HF BERT)."""
    m = np.asarray(attention_mask)
    return ((1 - m.astype(_F32)) * np.finfo(_F32).min)[:, None, None, :]


def attention(q, k, v, *, heads: int, bias=None):
    """Multi-head scaled dot-product attention of (N, T, D) projections; returns (N, T, D).

    ``softmax(q_h k_h^T / sqrt(D / heads) + bias) v_h`` per head, heads concatenated. ``bias`` is an
    additive (N, 1, 1, T) mask, e.g. :func:`attention_bias` of a padding mask.
    """
    N, T, D = q.shape
    dh = D // heads

    def split(a):
        return a.reshape(N, a.shape[1], heads, dh).transpose(0, 2, 1, 3)

    qh = split(q) * _F32(1.0 / math.sqrt(dh))
    scores = np.matmul(qh, split(k).transpose(0, 1, 3, 2))
    if bias is not None:
        scores += bias
    fresh = scores.dtype == _F32 and scores.flags.c_contiguous and scores.size  # the product's own array
    p = _softmax_rows(scores) if fresh else softmax(scores, axis=-1)
    return np.matmul(p, split(v)).transpose(0, 2, 1, 3).reshape(N, T, D)
