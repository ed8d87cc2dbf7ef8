"""Constant folding of ONNX shape arithmetic at import: NumPy forms of the small ops that compute shapes.

A shape read from a tensor whose batch size is not fixed holds a symbol (:class:`Sym`) in place of that
dimension; arithmetic on a symbol gives a new symbol, so ``x.view(x.size(0), -1)`` folds to the shape
``[Sym('batch'), -1]``, which :func:`resolve_shape` turns into ONNX's ``[0, -1]`` (0 = copy the dimension).
Nothing here runs a layer of the model: these are the constants the file computes from its own shapes.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Sym", "FOLDERS", "has_symbols", "resolve_shape", "FoldError"]


class FoldError(Exception):
    """A constant that cannot be folded (the caller turns it into a one-line ModelFileError)."""


class Sym:
    """An unknown dimension (e.g. the batch size); arithmetic on it gives another unknown."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = str(name)

    def __repr__(self) -> str:
        return self.name

    def _op(self, other, sym: str, reverse=False):
        a, b = (other, self) if reverse else (self, other)
        return Sym(f"({a}{sym}{b})")

    def __add__(self, o):
        return self._op(o, "+")

    def __radd__(self, o):
        return self._op(o, "+", True)

    def __sub__(self, o):
        return self._op(o, "-")

    def __rsub__(self, o):
        return self._op(o, "-", True)

    def __mul__(self, o):
        return self._op(o, "*")

    def __rmul__(self, o):
        return self._op(o, "*", True)

    def __floordiv__(self, o):
        return self._op(o, "//")

    def __rfloordiv__(self, o):
        return self._op(o, "//", True)

    def __neg__(self):
        return Sym(f"(-{self})")

    def __int__(self):
        raise FoldError(f"the dimension {self} is not known at import")

    __index__ = __int__


def has_symbols(a) -> bool:
    return isinstance(a, np.ndarray) and a.dtype == object and any(isinstance(v, Sym) for v in a.flat)


def _ints(a) -> list[int]:
    if has_symbols(a):
        raise FoldError(f"the value {a.tolist()} depends on a dimension unknown at import")
    return [int(v) for v in np.asarray(a).reshape(-1)]


def resolve_shape(shape, data_dims) -> list[int]:
    """A folded Reshape target -> ONNX ints: a symbol equal to the input's own dimension at that position
    becomes 0 (copy), one other unknown becomes -1 (infer).

    ``data_dims`` lists the data input's dimensions as ints, symbol names (str) or None.
    """
    out: list = []
    for i, v in enumerate(np.asarray(shape, dtype=object).reshape(-1)):
        if isinstance(v, Sym):
            same = i < len(data_dims) and isinstance(data_dims[i], str) and data_dims[i] == v.name
            out.append(0 if same else v)
        else:
            out.append(int(v))
    unknown = [v for v in out if isinstance(v, Sym)]
    if len(unknown) > 1 or (unknown and -1 in out):
        raise FoldError(
            f"the target shape {[str(v) for v in out]} has more than one dimension unknown at import"
        )
    return [-1 if isinstance(v, Sym) else v for v in out]


def _arr(a):
    return a if isinstance(a, np.ndarray) else np.asarray(a)


def _axes(attrs, inputs, idx, name="axes"):
    if len(inputs) > idx and inputs[idx] is not None:
        return _ints(inputs[idx])
    v = attrs.get(name)
    return None if v is None else [int(a) for a in v]


def _binary(fn):
    def run(inputs, attrs):
        a, b = _arr(inputs[0]), _arr(inputs[1])
        return [fn(a, b)]

    return run


def _div(a, b):
    if a.dtype == object or b.dtype == object or (a.dtype.kind in "iu" and b.dtype.kind in "iu"):
        if not (has_symbols(a) or has_symbols(b)):
            q = np.trunc(np.asarray(a, dtype=np.float64) / np.asarray(b, dtype=np.float64))
            return q.astype(np.int64)
        return np.asarray(a, dtype=object) // np.asarray(b, dtype=object)
    return (a / b).astype(np.result_type(a, b))


_ONNX_INT = {
    6: np.int32,
    7: np.int64,
    9: np.bool_,
    1: np.float32,
    11: np.float64,
    10: np.float16,
    2: np.uint8,
    3: np.int8,
    4: np.uint16,
    5: np.int16,
    12: np.uint32,
    13: np.uint64,
}


def _cast(inputs, attrs):
    a = _arr(inputs[0])
    to = _ONNX_INT.get(int(attrs["to"]))
    if to is None:
        raise FoldError(f"Cast to ONNX type {attrs['to']}")
    if a.dtype == object:
        if np.issubdtype(to, np.integer):
            return [a]
        _ints(a)
        return [a.astype(np.int64).astype(to)]
    return [a.astype(to)]


def _gather(inputs, attrs):
    a, idx = _arr(inputs[0]), np.asarray(_ints(inputs[1]), dtype=np.int64).reshape(np.shape(inputs[1]))
    return [np.take(a, idx, axis=int(attrs.get("axis", 0)))]


def _concat(inputs, attrs):
    parts = [_arr(a) for a in inputs]
    if any(p.dtype == object for p in parts):
        parts = [p.astype(object) for p in parts]
    return [np.concatenate(parts, axis=int(attrs["axis"]))]


def _unsqueeze(inputs, attrs):
    a = _arr(inputs[0])
    axes = _axes(attrs, inputs, 1)
    rank = a.ndim + len(axes)
    for ax in sorted(x % rank for x in axes):
        a = np.expand_dims(a, ax)
    return [a]


def _squeeze(inputs, attrs):
    a = _arr(inputs[0])
    axes = _axes(attrs, inputs, 1)
    return [np.squeeze(a, axis=None if axes is None else tuple(x % a.ndim for x in axes))]


def _slice(inputs, attrs):
    a = _arr(inputs[0])
    starts, ends = _axes(attrs, inputs, 1, "starts"), _axes(attrs, inputs, 2, "ends")
    axes = _axes(attrs, inputs, 3) or list(range(len(starts)))
    steps = _axes(attrs, inputs, 4, "steps") or [1] * len(starts)
    index = [slice(None)] * a.ndim
    for s, e, ax, st in zip(starts, ends, axes, steps, strict=True):
        index[ax % a.ndim] = slice(s, e, st)
    return [a[tuple(index)]]


def _reshape(inputs, attrs):
    a = _arr(inputs[0])
    shape = _ints(inputs[1])
    shape = [a.shape[i] if (s == 0 and not attrs.get("allowzero")) else s for i, s in enumerate(shape)]
    return [a.reshape(shape)]


def _constant_of_shape(inputs, attrs):
    value = attrs.get("value")
    value = np.zeros(1, np.float32) if value is None else np.asarray(value)
    return [np.full(_ints(inputs[0]), value.reshape(-1)[0], dtype=value.dtype)]


def _range(inputs, attrs):
    start, limit, delta = (np.asarray(v).reshape(()) for v in inputs[:3])
    for v in (start, limit, delta):
        _ints(v) if v.dtype == object else None
    return [np.arange(start, limit, delta).astype(np.result_type(start, limit, delta))]


def _expand(inputs, attrs):
    a = _arr(inputs[0])
    shape = _ints(inputs[1])
    return [a * np.ones(shape, dtype=a.dtype if a.dtype != object else np.int64)]


def _where(inputs, attrs):
    return [np.where(_arr(inputs[0]).astype(bool), _arr(inputs[1]), _arr(inputs[2]))]


def _equal(inputs, attrs):
    a, b = _arr(inputs[0]), _arr(inputs[1])
    if has_symbols(a) or has_symbols(b):
        raise FoldError("a comparison with a dimension unknown at import")
    return [np.equal(a, b)]


def _unary(fn):
    def run(inputs, attrs):
        a = _arr(inputs[0])
        if has_symbols(a):
            raise FoldError("arithmetic on a dimension unknown at import")
        return [fn(a).astype(a.dtype)]

    return run


def _transpose(inputs, attrs):
    perm = attrs.get("perm")
    return [np.transpose(_arr(inputs[0]), None if perm is None else [int(p) for p in perm])]


def _tile(inputs, attrs):
    return [np.tile(_arr(inputs[0]), _ints(inputs[1]))]


def _reduce_prod(inputs, attrs):
    a = _arr(inputs[0])
    axes = _axes(attrs, inputs, 1)
    keep = bool(attrs.get("keepdims", 1))
    return [np.prod(a, axis=None if axes is None else tuple(axes), keepdims=keep)]


def _minmax(fn):
    def run(inputs, attrs):
        arrs = [_arr(a) for a in inputs]
        if any(has_symbols(a) for a in arrs):
            raise FoldError("min/max of a dimension unknown at import")
        out = arrs[0]
        for a in arrs[1:]:
            out = fn(out, a)
        return [out]

    return run


#: op -> fn(inputs: list of arrays, attrs) -> list of arrays, applied when every input is a constant
FOLDERS = {
    "Gather": _gather,
    "Concat": _concat,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Cast": _cast,
    "Add": _binary(lambda a, b: a + b),
    "Sub": _binary(lambda a, b: a - b),
    "Mul": _binary(lambda a, b: a * b),
    "Div": _binary(_div),
    "Pow": _binary(lambda a, b: np.power(a, b)),
    "Slice": _slice,
    "Reshape": _reshape,
    "ConstantOfShape": _constant_of_shape,
    "Range": _range,
    "Expand": _expand,
    "Where": _where,
    "Equal": _equal,
    "Neg": _unary(np.negative),
    "Sqrt": _unary(np.sqrt),
    "Floor": _unary(np.floor),
    "Ceil": _unary(np.ceil),
    "Abs": _unary(np.abs),
    "Transpose": _transpose,
    "Tile": _tile,
    "ReduceProd": _reduce_prod,
    "Min": _minmax(np.minimum),
    "Max": _minmax(np.maximum),
    "Identity": lambda inputs, attrs: [inputs[0]],
}
