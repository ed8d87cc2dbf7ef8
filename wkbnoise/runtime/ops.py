"""The operators of a model graph: ONNX names and semantics, computed by :mod:`wkbnoise.runtime.layers`.

``OPS[op](inputs, attrs, ctx) -> list of outputs``: ``inputs`` are float32 (or integer index) arrays in the
order of the ONNX operator, ``None`` for an absent optional input; ``attrs`` are the node's attributes
(ONNX names; inputs that ONNX gives as constant integer tensors, such as Reshape's ``shape`` or Slice's
``starts``, are attributes here); ``ctx`` is the :class:`Context` of the call. Image operators read NCHW.

Four operators are not ONNX's; they keep the transformer encoders short and fast:

- ``wkbnoise.Attention(q, k, v[, mask]) {heads}``: multi-head scaled dot-product attention of (N, T, D)
  projections, ``softmax(q_h k_h^T / sqrt(D / heads) + bias) v_h`` per head, heads concatenated; ``mask``
  (N, T) of {0, 1} adds the float32 minimum to the scores of padding keys (as Hugging Face BERT).
- ``wkbnoise.PrependToken(x, token)``: (N, T, D) and a learned (1, 1, D) token -> (N, T + 1, D).
- ``wkbnoise.PositionIds(ids)``: (N, T) -> the int64 positions ``[[0, 1, ..., T - 1]]`` (1, T).
- ``wkbnoise.MaskedMean(h, mask)``: mean of (N, T, D) over the tokens whose mask is 1 -> (N, D).

The executor (:mod:`wkbnoise.runtime.graph`) keeps image activations channel-major, (C, N, H, W), between
operators that accept it (:data:`CNHW_OPS`): a convolution is then one matrix product that writes the next
layer's input directly, without a transpose per layer.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from ..errors import InputError
from . import layers
from .layers import conv2d_cnhw, im2col_cnhw

__all__ = ["OPS", "CNHW_OPS", "FRESH_OPS", "Context", "check_node", "op_names"]

_F32 = np.float32


class Context:
    """What an operator may use beyond its inputs during one call of the graph.

    Attributes
    ----------
    fixed : dict or None
        Input-only work kept across calls on the same prepared input (the im2col of a convolution that reads
        a graph input), keyed by node name; ``None`` when the input is not prepared.
    buffers : dict
        Reusable work arrays (the im2col columns, key ``"cols"``); their content never outlives one operator.
    node : Node
        The node being run.
    owned : tuple of bool
        Per input: the executor will not read that array again, so the operator may write its result into it.
    fed : tuple of bool
        Per input: the value is a graph input (constant across calls on a prepared input).
    serial : bool
        The BLAS library runs one thread during this call (chunks side by side), so large images'
        convolutions may go in cache-sized bands of rows.
    """

    __slots__ = ("fixed", "buffers", "node", "owned", "fed", "serial")

    def __init__(self, fixed: dict | None = None, buffers: dict | None = None, serial: bool = False):
        self.fixed = fixed
        self.serial = bool(serial)
        self.buffers = {} if buffers is None else buffers
        self.node = None
        self.owned = ()
        self.fed = ()

    def may_write(self, j: int) -> bool:
        return j < len(self.owned) and self.owned[j]


# ---------------------------------------------------------------------------------------------------------
# attribute helpers
# ---------------------------------------------------------------------------------------------------------
def _ints(attrs, key, default):
    v = attrs.get(key)
    return list(default) if v is None else [int(a) for a in v]


def _spatial(attrs, x_shape, w_hw, dil=(1, 1)):
    """strides, dilations, (top, left, bottom, right) pads of a 2-D window op from ONNX attributes."""
    strides = _ints(attrs, "strides", [1, 1])
    pads = _ints(attrs, "pads", [0, 0, 0, 0])
    auto = attrs.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0, 0, 0, 0]
        for a in range(2):
            n = x_shape[-2 + a]
            k = (w_hw[a] - 1) * dil[a] + 1
            out = -(-n // strides[a])
            total = max(0, (out - 1) * strides[a] + k - n)
            small, big = total // 2, total - total // 2
            pads[a], pads[a + 2] = (small, big) if auto == "SAME_UPPER" else (big, small)
    elif auto == "VALID":
        pads = [0, 0, 0, 0]
    return strides, pads


def _pad_hw(x, pads, fill=0.0):
    """Pad the last two axes by (top, left, bottom, right) with ``fill``."""
    t, lft, b, r = pads
    if not any(pads):
        return x
    out = np.full(x.shape[:-2] + (x.shape[-2] + t + b, x.shape[-1] + lft + r), fill, dtype=_F32)
    out[..., t:t + x.shape[-2], lft:lft + x.shape[-1]] = x
    return out


def _dilate(w, dil):
    dh, dw = dil
    if dh == dw == 1:
        return w
    O, C, kh, kw = w.shape
    out = np.zeros((O, C, (kh - 1) * dh + 1, (kw - 1) * dw + 1), _F32)
    out[:, :, ::dh, ::dw] = w
    return out


# ---------------------------------------------------------------------------------------------------------
# convolution, normalization, pooling (channel-major forms; the NCHW forms wrap them)
# ---------------------------------------------------------------------------------------------------------
def _conv_cn(inputs, attrs, ctx):
    x, w = inputs[0], inputs[1]
    b = inputs[2] if len(inputs) > 2 else None
    dil = _ints(attrs, "dilations", [1, 1])
    strides, pads = _spatial(attrs, x.shape, w.shape[2:], dil)
    group = int(attrs.get("group", 1))
    if x.shape[0] != w.shape[1] * group:
        raise InputError(f"input has {x.shape[0]} channels; the weight "
                         f"{list(w.shape)} with group={group} reads {w.shape[1] * group}.")
    w = _dilate(w, dil)
    t, lft, bot, r = pads
    if t != bot or lft != r:
        x, pads = _pad_hw(x, pads), [0, 0, 0, 0]
    stride, padding = (strides[0], strides[1]), (pads[0], pads[1])
    if ctx.fixed is not None and ctx.fed and ctx.fed[0] and group == 1:
        cols = ctx.fixed.get(ctx.node.name)
        if cols is None:
            cols = im2col_cnhw(np.ascontiguousarray(x), w.shape[2:], stride, padding)
            ctx.fixed[ctx.node.name] = cols
        return [conv2d_cnhw(x, w, b, stride=stride, padding=padding, cols=cols)]
    return [conv2d_cnhw(np.ascontiguousarray(x), w, b, stride=stride, padding=padding, groups=group,
                        buffers=ctx.buffers, bands=ctx.serial)]


def _to_cn(x):
    return np.ascontiguousarray(x.transpose(1, 0, 2, 3))


def _conv(inputs, attrs, ctx):
    x = inputs[0]
    if x.ndim == 3:  # 1-D convolution: (N, C, L) as (N, C, 1, L)
        a = dict(attrs)
        for key, pad in (("strides", 1), ("dilations", 1)):
            if key in a:
                a[key] = [pad] + list(a[key])
        if "pads" in a:
            a["pads"] = [0, a["pads"][0], 0, a["pads"][1]]
        if "kernel_shape" in a:
            a["kernel_shape"] = [1] + list(a["kernel_shape"])
        w = inputs[1][:, :, None, :]
        return [_conv([x[:, :, None, :], w, *inputs[2:]], a, ctx)[0][:, :, 0, :]]
    return [_to_cn(_conv_cn([_to_cn(x), *inputs[1:]], attrs, ctx)[0])]


def _bn(axis):
    def bn(inputs, attrs, ctx):
        x, scale, bias, mean, var = inputs[:5]
        s = scale.astype(np.float64) / np.sqrt(var.astype(np.float64) + float(attrs.get("epsilon", 1e-5)))
        shift = bias.astype(np.float64) - mean.astype(np.float64) * s
        shape = [1] * x.ndim
        shape[axis] = -1
        out = x if ctx.may_write(0) else None
        out = np.multiply(x, s.astype(_F32).reshape(shape), out=out)
        out += shift.astype(_F32).reshape(shape)
        return [out]

    return bn


def _pool_geometry(x, attrs):
    k = _ints(attrs, "kernel_shape", [])
    if len(k) != 2:
        raise InputError(f"pooling over {len(k)} axes; the runtime pools over two (H, W).")
    strides, pads = _spatial(attrs, x.shape, k)
    if attrs.get("ceil_mode", 0):
        pads = list(pads)
        for a in range(2):
            n = x.shape[-2 + a] + pads[a] + pads[a + 2]
            out = -(-(n - k[a]) // strides[a]) + 1
            if (out - 1) * strides[a] >= x.shape[-2 + a] + pads[a]:
                out -= 1
            pads[a + 2] += max(0, (out - 1) * strides[a] + k[a] - n)
    return k, strides, pads


def _max_pool(inputs, attrs, ctx):
    x = inputs[0]
    if any(d != 1 for d in attrs.get("dilations", [1, 1])):
        raise InputError("dilated max pooling is not supported.")
    k, strides, pads = _pool_geometry(x, attrs)
    return [layers.max_pool_cnhw(x, k, strides, tuple(pads))]


def _avg_pool(inputs, attrs, ctx):
    x = inputs[0]
    k, strides, pads = _pool_geometry(x, attrs)
    explicit = _spatial(attrs, x.shape, k)[1]
    out = layers.avg_pool_cnhw(_pad_hw(x, pads), k, strides, 0)  # sum / (kh kw)
    H, W = x.shape[-2:]
    if attrs.get("count_include_pad", 0):
        t, lft, b, r = explicit
        inside = np.zeros((H + pads[0] + pads[2], W + pads[1] + pads[3]), _F32)
        inside[pads[0] - t:pads[0] + H + b, pads[1] - lft:pads[1] + W + r] = 1
    else:
        inside = _pad_hw(np.ones((H, W), _F32), pads)
    count = layers.avg_pool_cnhw(inside, k, strides, 0)
    if not np.all(count == 1):
        out *= (1.0 / count).astype(_F32)
    return [out]


def _global_avg_pool(inputs, attrs, ctx):
    x = inputs[0]
    return [x.mean(axis=tuple(range(2, x.ndim)), dtype=_F32, keepdims=True)]


# ---------------------------------------------------------------------------------------------------------
# elementwise
# ---------------------------------------------------------------------------------------------------------
def _unary(fn):
    def op(inputs, attrs, ctx):
        x = inputs[0]
        out = x if ctx.may_write(0) and x.dtype == _F32 else None
        return [fn(x, attrs, out)]

    return op


def _binary(ufunc):
    def op(inputs, attrs, ctx):
        a, b = inputs[0], inputs[1]
        if ctx.may_write(0) and a.dtype == _F32 and np.broadcast_shapes(a.shape, b.shape) == a.shape:
            return [ufunc(a, b, out=a)]
        out = ufunc(a, b)
        return [out.astype(_F32, copy=False) if out.dtype == np.float64 else out]

    return op


def _clip(x, attrs, out):
    lo, hi = attrs.get("min"), attrs.get("max")
    lo = -np.inf if lo is None else lo
    hi = np.inf if hi is None else hi
    return np.clip(x, _F32(lo), _F32(hi), out=out)


def _hard_sigmoid(x, attrs, out):
    y = np.multiply(x, _F32(attrs.get("alpha", 0.2)), out=out)
    y += _F32(attrs.get("beta", 0.5))
    return np.clip(y, _F32(0), _F32(1), out=y)


def _hard_swish(x, attrs, out):
    h = _hard_sigmoid(x, {"alpha": 1.0 / 6.0, "beta": 0.5}, None)
    return np.multiply(x, h, out=out)


def _gelu(x, attrs, out):
    return layers.gelu(x, attrs.get("approximate", "none"))


def _leaky(x, attrs, out):
    return np.where(x >= 0, x, x * _F32(attrs.get("alpha", 0.01))).astype(_F32, copy=False)


_UNARY = {
    "Relu": lambda x, a, out: np.maximum(x, _F32(0), out=out),
    "Clip": _clip,
    "Sigmoid": lambda x, a, out: special.expit(x, out=out),
    "HardSigmoid": _hard_sigmoid,
    "HardSwish": _hard_swish,
    "Tanh": lambda x, a, out: np.tanh(x, out=out),
    "Erf": lambda x, a, out: special.erf(x, out=out),
    "Gelu": _gelu,
    "LeakyRelu": _leaky,
    "Sqrt": lambda x, a, out: np.sqrt(x, out=out),
    "Exp": lambda x, a, out: np.exp(x, out=out),
    "Log": lambda x, a, out: np.log(x, out=out),
    "Neg": lambda x, a, out: np.negative(x, out=out),
    "Abs": lambda x, a, out: np.abs(x, out=out),
    "Reciprocal": lambda x, a, out: np.divide(_F32(1), x, out=out),
}
_BINARY = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide, "Pow": np.power}


def _identity(inputs, attrs, ctx):
    out = [inputs[0]]
    if len(ctx.node.outputs) > 1:  # Dropout's mask: all kept at inference
        out.append(np.ones(inputs[0].shape, dtype=bool))
    return out


# ---------------------------------------------------------------------------------------------------------
# matrix products, normalization, softmax
# ---------------------------------------------------------------------------------------------------------
def _gemm(inputs, attrs, ctx):
    """``alpha A' B' + beta C``; an A of more than two axes is read as rows over its last axis (a PyTorch
    Linear applied to token sequences)."""
    a, b = inputs[0], inputs[1]
    c = inputs[2] if len(inputs) > 2 else None
    lead = None
    if a.ndim > 2 and not attrs.get("transA", 0):
        lead = a.shape[:-1]
        a = a.reshape(-1, a.shape[-1])
    if attrs.get("transA", 0):
        a = a.T
    if attrs.get("transB", 0):
        b = b.T
    if a.shape[1] != b.shape[0]:
        raise InputError(f"input has {a.shape[1]} features; the weight "
                         f"reads {b.shape[0]}.")
    out = np.dot(a, b)
    alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
    if alpha != 1.0:
        out *= _F32(alpha)
    if c is not None:
        out += c if beta == 1.0 else _F32(beta) * c
    return [out if lead is None else out.reshape(lead + (out.shape[-1],))]


def _matmul(inputs, attrs, ctx):
    a, b = inputs
    if b.ndim == 2 and a.ndim > 2:
        return [np.dot(a.reshape(-1, a.shape[-1]), b).reshape(a.shape[:-1] + (b.shape[1],))]
    return [np.matmul(a, b)]


def _layer_norm(inputs, attrs, ctx):
    x, scale = inputs[0], inputs[1]
    bias = inputs[2] if len(inputs) > 2 else None
    axis = int(attrs.get("axis", -1)) % x.ndim
    eps = float(attrs.get("epsilon", 1e-5))
    if axis == x.ndim - 1:
        return [layers.layer_norm(x, scale, np.zeros_like(scale) if bias is None else bias, eps)]
    axes = tuple(range(axis, x.ndim))
    mu = x.mean(axis=axes, keepdims=True, dtype=_F32)
    xc = x - mu
    var = (xc * xc).mean(axis=axes, keepdims=True, dtype=_F32)
    y = xc / np.sqrt(var + _F32(eps)) * scale
    return [y if bias is None else y + bias]


def _softmax(inputs, attrs, ctx):
    return [layers.softmax(inputs[0], axis=int(attrs.get("axis", -1)))]


def _log_softmax(inputs, attrs, ctx):
    x = inputs[0]
    axis = int(attrs.get("axis", -1))
    z = x - x.max(axis=axis, keepdims=True)
    return [z - np.log(np.exp(z).sum(axis=axis, keepdims=True))]


# ---------------------------------------------------------------------------------------------------------
# shapes and indexing
# ---------------------------------------------------------------------------------------------------------
def _flatten(inputs, attrs, ctx):
    x = inputs[0]
    axis = int(attrs.get("axis", 1)) % (x.ndim + 1) if x.ndim else 0
    return [np.ascontiguousarray(x).reshape(int(np.prod(x.shape[:axis], dtype=np.int64)), -1)]


def _reshape(inputs, attrs, ctx):
    x = inputs[0]
    shape = [int(s) for s in attrs["shape"]]
    if not attrs.get("allowzero", 0):
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return [np.ascontiguousarray(x).reshape(shape)]


def _transpose(inputs, attrs, ctx):
    x = inputs[0]
    perm = attrs.get("perm")
    return [x.transpose(None if perm is None else [int(p) for p in perm])]


def _squeeze(inputs, attrs, ctx):
    x = inputs[0]
    axes = attrs.get("axes")
    return [np.squeeze(x) if axes is None else np.squeeze(x, axis=tuple(int(a) for a in axes))]


def _unsqueeze(inputs, attrs, ctx):
    x = inputs[0]
    axes = sorted(int(a) % (x.ndim + len(attrs["axes"])) for a in attrs["axes"])
    for a in axes:
        x = np.expand_dims(x, a)
    return [x]


def _concat(inputs, attrs, ctx):
    return [np.concatenate([a for a in inputs if a is not None], axis=int(attrs["axis"]))]


def _split(inputs, attrs, ctx):
    x = inputs[0]
    axis = int(attrs.get("axis", 0))
    n = len(ctx.node.outputs)
    sizes = attrs.get("split")
    if sizes is None:
        step = -(-x.shape[axis] // n)
        sizes = [min(step, x.shape[axis] - i * step) for i in range(n)]
    return np.split(x, np.cumsum(sizes)[:-1], axis=axis)


def _gather(inputs, attrs, ctx):
    data, idx = inputs
    axis = int(attrs.get("axis", 0))
    idx = np.asarray(idx)
    if not np.issubdtype(idx.dtype, np.integer):
        raise InputError(f"indices have dtype {idx.dtype}; they must be "
                         f"integers.")
    n = data.shape[axis]
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise InputError(f"indices lie in [{idx.min()}, {idx.max()}]; "
                         f"the axis has {n} entries (token ids must be < the vocabulary size {n}).")
    return [np.take(data, idx, axis=axis)]


def _slice(inputs, attrs, ctx):
    x = inputs[0]
    starts, ends = attrs["starts"], attrs["ends"]
    axes = attrs.get("axes", list(range(len(starts))))
    steps = attrs.get("steps", [1] * len(starts))
    index = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
        index[int(a)] = slice(int(s), int(e), int(st))
    return [x[tuple(index)]]


def _pad(inputs, attrs, ctx):
    x = inputs[0]
    pads = [int(p) for p in attrs["pads"]]
    axes = attrs.get("axes", list(range(x.ndim)))
    width = [(0, 0)] * x.ndim
    for i, a in enumerate(axes):
        width[int(a)] = (pads[i], pads[i + len(axes)])
    if any(p < 0 for pair in width for p in pair):
        raise InputError(f"negative pads {pads} are not supported.")
    mode = attrs.get("mode", "constant")
    if mode == "constant":
        return [np.pad(x, width, constant_values=float(attrs.get("value", 0.0)))]
    return [np.pad(x, width, mode={"reflect": "reflect", "edge": "edge", "wrap": "wrap"}[mode])]


def _reduce(fn):
    def op(inputs, attrs, ctx):
        x = inputs[0]
        axes = attrs.get("axes")
        axes = None if axes is None or len(axes) == 0 else tuple(int(a) for a in axes)
        return [fn(x, axis=axes, keepdims=bool(attrs.get("keepdims", 1))).astype(x.dtype, copy=False)]

    return op


def _expand(inputs, attrs, ctx):
    x = inputs[0]
    shape = np.broadcast_shapes(x.shape, tuple(int(s) for s in attrs["shape"]))
    return [np.broadcast_to(x, shape)]


def _tile(inputs, attrs, ctx):
    return [np.tile(inputs[0], [int(r) for r in attrs["repeats"]])]


_CAST = {1: np.float32, 6: np.int32, 7: np.int64, 9: np.bool_, 10: np.float16, 11: np.float64}


def _cast(inputs, attrs, ctx):
    to = _CAST[int(attrs["to"])]
    return [inputs[0].astype(_F32 if to in (np.float16, np.float64) else to)]


# ---------------------------------------------------------------------------------------------------------
# wkbnoise operators
# ---------------------------------------------------------------------------------------------------------
def _attention(inputs, attrs, ctx):
    mask = inputs[3] if len(inputs) > 3 else None
    bias = None if mask is None else layers.attention_bias(mask)
    return [layers.attention(*inputs[:3], heads=int(attrs["heads"]), bias=bias)]


def _prepend_token(inputs, attrs, ctx):
    x, tok = inputs
    N, T, D = x.shape
    out = np.empty((N, T + 1, D), _F32)
    out[:, 0] = tok.reshape(D)
    out[:, 1:] = x
    return [out]


def _position_ids(inputs, attrs, ctx):
    return [np.arange(inputs[0].shape[1], dtype=np.int64)[None]]


def _masked_mean(inputs, attrs, ctx):
    h, mask = inputs
    m = np.asarray(mask).astype(_F32)
    return [np.einsum("ntd,nt->nd", h, m) / np.maximum(m.sum(axis=1), _F32(1))[:, None]]


#: op name -> ``fn(inputs, attrs, ctx) -> list of arrays`` (NCHW semantics)
OPS = {
    "Conv": lambda i, a, c: _conv(i, a, c),
    "BatchNormalization": _bn(1),
    "MaxPool": lambda i, a, c: [_to_nchw_pool(_max_pool, i, a, c)],
    "AveragePool": lambda i, a, c: [_to_nchw_pool(_avg_pool, i, a, c)],
    "GlobalAveragePool": _global_avg_pool,
    **{name: _unary(fn) for name, fn in _UNARY.items()},
    **{name: _binary(fn) for name, fn in _BINARY.items()},
    "Identity": _identity,
    "Dropout": _identity,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "LayerNormalization": _layer_norm,
    "Softmax": _softmax,
    "LogSoftmax": _log_softmax,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Transpose": _transpose,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Concat": _concat,
    "Split": _split,
    "Gather": _gather,
    "Slice": _slice,
    "Pad": _pad,
    "ReduceMean": _reduce(np.mean),
    "ReduceSum": _reduce(np.sum),
    "ReduceMax": _reduce(np.max),
    "Expand": _expand,
    "Tile": _tile,
    "Cast": _cast,
    "wkbnoise.Attention": _attention,
    "wkbnoise.PrependToken": _prepend_token,
    "wkbnoise.PositionIds": _position_ids,
    "wkbnoise.MaskedMean": _masked_mean,
}


def _to_nchw_pool(fn, inputs, attrs, ctx):
    """The pools reduce the last two axes, so they read NCHW and (C, N, H, W) alike."""
    return fn([np.asarray(inputs[0], _F32)], attrs, ctx)[0]


def _concat_cn(inputs, attrs, ctx):
    axis = int(attrs["axis"]) % 4
    return [np.concatenate([a for a in inputs if a is not None], axis=(1, 0, 2, 3)[axis])]


#: ops that also run on channel-major (C, N, H, W) activations: op -> (fn, indices of activation inputs or
#: None for all, whether to switch a NCHW input to channel-major for it). Their results stay channel-major.
CNHW_OPS = {
    "Conv": (_conv_cn, (0,), True),
    "BatchNormalization": (_bn(0), (0,), False),
    "MaxPool": (_max_pool, (0,), False),
    "AveragePool": (_avg_pool, (0,), False),
    "GlobalAveragePool": (_global_avg_pool, (0,), False),
    "Concat": (_concat_cn, None, False),
    **{name: (OPS[name], (0,), False) for name in _UNARY if name != "Gelu"},
    **{name: (OPS[name], None, False) for name in _BINARY},
    "Identity": (_identity, (0,), False),
    "Dropout": (_identity, (0,), False),
}

#: ops whose outputs never share memory with an input other than one the executor let them overwrite
FRESH_OPS = frozenset({"Conv", "BatchNormalization", "MaxPool", "AveragePool", "GlobalAveragePool", "Gemm",
                       "MatMul", "LayerNormalization", "Softmax", "LogSoftmax", "Concat", "Gather", "Pad",
                       "ReduceMean", "ReduceSum", "ReduceMax", "Tile", "Cast", "wkbnoise.Attention",
                       "wkbnoise.PrependToken", "wkbnoise.PositionIds", "wkbnoise.MaskedMean",
                       *_UNARY, *_BINARY})


# ---------------------------------------------------------------------------------------------------------
# attribute checks
# ---------------------------------------------------------------------------------------------------------
_I, _IS, _F, _S = "int", "ints", "float", "str"
_WINDOW = {"strides": _IS, "pads": _IS, "dilations": _IS, "kernel_shape": _IS, "auto_pad": _S}
#: op -> (attribute kinds, required attributes, (min, max) inputs, (min, max) outputs)
SPECS = {
    "Conv": ({**_WINDOW, "group": _I}, (), (2, 3), (1, 1)),
    "BatchNormalization": ({"epsilon": _F, "momentum": _F, "training_mode": _I}, (), (5, 5), (1, 1)),
    "MaxPool": ({**_WINDOW, "ceil_mode": _I, "storage_order": _I}, ("kernel_shape",), (1, 1), (1, 1)),
    "AveragePool": ({**_WINDOW, "ceil_mode": _I, "count_include_pad": _I}, ("kernel_shape",), (1, 1), (1, 1)),
    "GlobalAveragePool": ({}, (), (1, 1), (1, 1)),
    **{name: ({}, (), (1, 1), (1, 1)) for name in _UNARY},
    "Clip": ({"min": _F, "max": _F}, (), (1, 1), (1, 1)),
    "HardSigmoid": ({"alpha": _F, "beta": _F}, (), (1, 1), (1, 1)),
    "LeakyRelu": ({"alpha": _F}, (), (1, 1), (1, 1)),
    "Gelu": ({"approximate": _S}, (), (1, 1), (1, 1)),
    **{name: ({}, (), (2, 2), (1, 1)) for name in _BINARY},
    "Identity": ({}, (), (1, 1), (1, 1)),
    "Dropout": ({"ratio": _F, "seed": _I, "training_mode": _I}, (), (1, 3), (1, 2)),
    "Gemm": ({"alpha": _F, "beta": _F, "transA": _I, "transB": _I}, (), (2, 3), (1, 1)),
    "MatMul": ({}, (), (2, 2), (1, 1)),
    "LayerNormalization": ({"axis": _I, "epsilon": _F, "stash_type": _I}, (), (2, 3), (1, 1)),
    "Softmax": ({"axis": _I}, (), (1, 1), (1, 1)),
    "LogSoftmax": ({"axis": _I}, (), (1, 1), (1, 1)),
    "Flatten": ({"axis": _I}, (), (1, 1), (1, 1)),
    "Reshape": ({"shape": _IS, "allowzero": _I}, ("shape",), (1, 1), (1, 1)),
    "Transpose": ({"perm": _IS}, (), (1, 1), (1, 1)),
    "Squeeze": ({"axes": _IS}, (), (1, 1), (1, 1)),
    "Unsqueeze": ({"axes": _IS}, ("axes",), (1, 1), (1, 1)),
    "Concat": ({"axis": _I}, ("axis",), (1, 1 << 16), (1, 1)),
    "Split": ({"axis": _I, "split": _IS, "num_outputs": _I}, (), (1, 1), (1, 1 << 16)),
    "Gather": ({"axis": _I}, (), (2, 2), (1, 1)),
    "Slice": ({"starts": _IS, "ends": _IS, "axes": _IS, "steps": _IS}, ("starts", "ends"), (1, 1), (1, 1)),
    "Pad": ({"pads": _IS, "mode": _S, "value": _F, "axes": _IS}, ("pads",), (1, 1), (1, 1)),
    **{name: ({"axes": _IS, "keepdims": _I, "noop_with_empty_axes": _I}, (), (1, 1), (1, 1))
       for name in ("ReduceMean", "ReduceSum", "ReduceMax")},
    "Expand": ({"shape": _IS}, ("shape",), (1, 1), (1, 1)),
    "Tile": ({"repeats": _IS}, ("repeats",), (1, 1), (1, 1)),
    "Cast": ({"to": _I, "saturate": _I}, ("to",), (1, 1), (1, 1)),
    "wkbnoise.Attention": ({"heads": _I}, ("heads",), (3, 4), (1, 1)),
    "wkbnoise.PrependToken": ({}, (), (2, 2), (1, 1)),
    "wkbnoise.PositionIds": ({}, (), (1, 1), (1, 1)),
    "wkbnoise.MaskedMean": ({}, (), (2, 2), (1, 1)),
}
_CHOICES = {("Gelu", "approximate"): ("none", "tanh"), ("Pad", "mode"): ("constant", "reflect", "edge", "wrap"),
            ("Cast", "to"): tuple(_CAST), ("Conv", "auto_pad"): ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"),
            ("MaxPool", "auto_pad"): ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"),
            ("AveragePool", "auto_pad"): ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"),
            ("BatchNormalization", "training_mode"): (0,), ("Dropout", "training_mode"): (0,)}
_POSITIVE = {"strides", "kernel_shape", "dilations", "group", "heads", "repeats"}


def op_names() -> list[str]:
    """The operators the runtime implements, sorted."""
    return sorted(OPS)


def _kind_ok(v, kind) -> bool:
    if kind == _I:
        return isinstance(v, int) and not isinstance(v, bool)
    if kind == _F:
        return isinstance(v, int | float) and not isinstance(v, bool)
    if kind == _S:
        return isinstance(v, str)
    return isinstance(v, list | tuple) and all(isinstance(a, int) and not isinstance(a, bool) for a in v)


def check_node(op: str, attrs: dict, n_inputs: int, n_outputs: int) -> str | None:
    """Why a node's attributes or arity are wrong for ``op`` (a short phrase), or ``None`` when they are fine."""
    kinds, required, (lo, hi), (olo, ohi) = SPECS[op]
    if not lo <= n_inputs <= hi:
        return f"it has {n_inputs} inputs; {op} takes {lo}" + ("" if lo == hi else f" to {min(hi, 9)}")
    if not olo <= n_outputs <= ohi:
        return f"it has {n_outputs} outputs; {op} gives {olo}" + ("" if olo == ohi else f" to {min(ohi, 9)}")
    for key in required:
        if key not in attrs:
            return f"attribute {key!r} is required"
    for key, v in attrs.items():
        if key not in kinds:
            return f"attribute {key!r} is not one of {op}'s ({', '.join(sorted(kinds)) or 'none'})"
        if not _kind_ok(v, kinds[key]):
            return f"attribute {key}={v!r} must be {'an' if kinds[key] == _I else 'a'} {kinds[key]}"
        choices = _CHOICES.get((op, key))
        if choices is not None and v not in choices:
            return f"attribute {key}={v!r} must be one of {', '.join(map(repr, choices))}"
        if key in _POSITIVE and any(a < 1 for a in (v if isinstance(v, list | tuple) else [v])):
            return f"attribute {key}={v!r} must be positive"
        if key in ("pads",) and op in ("Conv", "MaxPool", "AveragePool") and (len(v) not in (2, 4) or min(v) < 0):
            return f"attribute pads={v!r} must be 4 non-negative ints (top, left, bottom, right)"
    if op == "Transpose" and "perm" in attrs and sorted(attrs["perm"]) != list(range(len(attrs["perm"]))):
        return f"attribute perm={attrs['perm']!r} is not a permutation"
    if op == "Slice":
        n = len(attrs["starts"])
        if any(len(attrs.get(k, [0] * n)) != n for k in ("ends", "axes", "steps")) or 0 in attrs.get("steps", []):
            return "attributes starts, ends, axes and steps must have the same length and nonzero steps"
    return None
