"""An ONNX file -> a wkbnoise graph and its float32 weights.

The file is parsed with the ``onnx`` package (protobuf only; nothing in it runs). The translation:

- shape arithmetic (``Shape``, ``Gather``, ``Concat``, ``Unsqueeze``, ``Constant`` ... feeding a ``Reshape``)
  is folded at import; a dimension that depends on the batch size stays symbolic and becomes ``0`` (copy)
  or ``-1`` (infer) in the ``Reshape`` target;
- constant integer inputs become attributes (``Reshape{shape}``, ``Slice{starts,ends,axes,steps}``,
  ``Squeeze{axes}``, ``Clip{min,max}``, ``Pad{pads}``, ``ReduceMean{axes}``, ``Gather{indices}`` ...),
  whichever opset the file uses (inputs since opset 10-18, attributes before);
- a ``BatchNormalization`` right after a ``Conv`` or ``Gemm`` is folded into that layer's weights;
  ``Identity``, ``Dropout`` and float-to-float ``Cast`` disappear;
- every remaining initializer becomes a float32 parameter; the faulty memory holds every ``Conv`` / ``Gemm``
  / ``MatMul`` weight and every ``Gather`` embedding table.

An op outside :data:`SUPPORTED`, or a file that is not a valid graph, raises a one-line
:class:`~wkbnoise.errors.ModelFileError` naming the node, the op and the file; no partial graph is returned.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ModelFileError
from ._fold import FOLDERS, FoldError, Sym, has_symbols, resolve_shape
from ._graph import build_graph, fold_batchnorm, prune

__all__ = ["read_onnx", "from_model_proto", "SUPPORTED"]

#: ops that become graph nodes (after the translations above); shape-only ops fold away
_RUNTIME_OPS = (
    "Conv",
    "Gemm",
    "MatMul",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Relu",
    "Clip",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "Tanh",
    "Erf",
    "Gelu",
    "Softmax",
    "BatchNormalization",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "Flatten",
    "Reshape",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Concat",
    "Gather",
    "Slice",
    "Pad",
    "ReduceMean",
    "Pow",
    "Sqrt",
    "LayerNormalization",
    "Expand",
    "Tile",
)
#: every op the importer reads
SUPPORTED = tuple(
    sorted(
        {
            *_RUNTIME_OPS,
            "Split",
            "Shape",
            "Constant",
            "ConstantOfShape",
            "Identity",
            "Dropout",
            "Cast",
            *FOLDERS,
        }
    )
)

_FLOAT, _INT64, _INT32 = 1, 7, 6
_DTYPE_NAMES = {1: "float32", 7: "int64", 6: "int32", 11: "float64", 10: "float16"}


def _onnx():
    try:
        import onnx
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ModelFileError(
            "reading .onnx files needs the optional `onnx` package: pip install onnx"
        ) from exc
    return onnx


def read_onnx(path):
    """Read an ``.onnx`` file into ``(Graph, params)``.

    Parameters
    ----------
    path : str or Path
        The ONNX model (weights inside the file, or as external data beside it).

    Returns
    -------
    graph : wkbnoise.runtime.graph.Graph
    params : dict of str to ndarray of float32
        The graph's weights by name (ONNX initializer names; folded BatchNorm weights keep the conv's names).
    """
    onnx = _onnx()
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such ONNX file")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad file
        raise ModelFileError(
            f"{path}: not a readable ONNX model ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'parse error'})"
        ) from None
    return from_model_proto(model, source=str(path))


def from_model_proto(model, source: str = "<onnx model>"):
    """Translate a parsed ``onnx.ModelProto`` (see :func:`read_onnx`)."""
    return _Translator(model, source).run()


class _Translator:
    def __init__(self, model, source):
        self.onnx = _onnx()
        self.model = model
        self.source = source
        self.opset = next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
        if self.opset == 0:
            raise ModelFileError(f"{source}: the model imports no default ONNX opset (not an ONNX graph?)")
        self.const: dict[str, np.ndarray] = {}
        self.alias: dict[str, str] = {}
        self.nodes: list[dict] = []
        self.names: set[str] = set()
        self.dims = self._value_dims()

    # -- helpers ------------------------------------------------------------------------------------------
    def _err(self, node, msg) -> ModelFileError:
        return ModelFileError(
            f"node '{node.name or node.output[0]}' (op '{node.op_type}') in {self.source}: {msg}"
        )

    def _value_dims(self) -> dict[str, list]:
        """Dimensions of every value the ONNX shape inference knows: int, symbol name (str) or None."""
        try:
            inferred = self.onnx.shape_inference.infer_shapes(self.model).graph
        except Exception:  # noqa: BLE001 - inference is a help, not a requirement
            inferred = self.model.graph
        dims: dict[str, list] = {}
        for vi in [*inferred.input, *inferred.value_info, *inferred.output]:
            t = vi.type.tensor_type
            if not t.HasField("shape"):
                continue
            dims[vi.name] = [
                d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim
            ]
        return dims

    def _name(self, v: str) -> str:
        while v in self.alias:
            v = self.alias[v]
        return v

    def _attrs(self, node) -> dict:
        helper, nh = self.onnx.helper, self.onnx.numpy_helper
        out = {}
        for a in node.attribute:
            v = helper.get_attribute_value(a)
            if isinstance(v, bytes):
                v = v.decode()
            elif isinstance(v, self.onnx.TensorProto):
                v = nh.to_array(v)
            elif isinstance(v, list | tuple):
                v = [x.decode() if isinstance(x, bytes) else x for x in v]
            elif not isinstance(v, int | float | str):
                raise self._err(node, f"attribute {a.name} of type {type(v).__name__} is not supported")
            out[a.name] = v
        return out

    def _int_input(self, node, ins, i, what):
        """A constant integer input as a list of ints (None when absent)."""
        if len(ins) <= i or ins[i] == "":
            return None
        if ins[i] not in self.const:
            raise self._err(
                node, f"{what} (input {i}) must be a constant at import; it is computed at run time"
            )
        try:
            v = self.const[ins[i]]
            if has_symbols(v):
                raise FoldError(f"{what} {v.tolist()} depends on a dimension unknown at import")
            return [int(x) for x in np.asarray(v).reshape(-1)]
        except FoldError as exc:
            raise self._err(node, str(exc)) from None

    def _float_input(self, node, ins, i, what):
        if len(ins) <= i or ins[i] == "":
            return None
        if ins[i] not in self.const:
            raise self._err(node, f"{what} (input {i}) must be a constant at import")
        return float(np.asarray(self.const[ins[i]]).reshape(-1)[0])

    def _emit(self, node, op, inputs, attrs, outputs=None):
        name = node.name or f"{op}_{len(self.nodes)}"
        base, k = name, 1
        while name in self.names:
            name, k = f"{base}_{k}", k + 1
        self.names.add(name)
        self.nodes.append(
            {
                "op": op,
                "name": name,
                "inputs": list(inputs),
                "outputs": list(outputs if outputs is not None else node.output[:1]),
                "attrs": attrs,
            }
        )

    # -- the walk -----------------------------------------------------------------------------------------
    def run(self):
        nh = self.onnx.numpy_helper
        g = self.model.graph
        for init in g.initializer:
            try:
                self.const[init.name] = nh.to_array(init)
            except Exception as exc:  # noqa: BLE001
                raise ModelFileError(
                    f"initializer '{init.name}' in {self.source}: unreadable ({exc})"
                ) from None
        for node in g.node:
            try:
                self._node(node)
            except (KeyError, IndexError, TypeError, ValueError) as exc:  # missing attribute, wrong arity ...
                raise self._err(node, f"malformed node ({type(exc).__name__}: {exc})") from None
        inputs = []
        for vi in g.input:
            if vi.name in self.const:
                continue
            elem = vi.type.tensor_type.elem_type
            if elem not in _DTYPE_NAMES:
                raise ModelFileError(
                    f"input '{vi.name}' in {self.source}: element type {elem} is not supported"
                )
            dims = self.dims.get(vi.name)
            shape = None if dims is None else [d if isinstance(d, int) and d > 0 else None for d in dims]
            inputs.append({"name": vi.name, "dtype": _DTYPE_NAMES[elem], "shape": shape})
        outputs = [o.name for o in g.output]
        return self._finish(inputs, outputs)

    def _finish(self, inputs, outputs):
        # a graph output reached through Identity/Dropout: give its producer the output's name
        for o in outputs:
            v = self._name(o)
            if v == o:
                continue
            if v in self.const or v in {i["name"] for i in inputs} or v in outputs:
                raise ModelFileError(
                    f"output '{o}' in {self.source}: it is a copy of '{v}', not a computed value"
                )
            for n in self.nodes:
                n["inputs"] = [o if x == v else x for x in n["inputs"]]
                n["outputs"] = [o if x == v else x for x in n["outputs"]]
            self.alias[v] = o
            self.alias.pop(o, None)
        for n in self.nodes:
            n["inputs"] = [self._name(x) if x else "" for x in n["inputs"]]
        params = {}
        produced = {o for n in self.nodes for o in n["outputs"]} | {i["name"] for i in inputs}
        for n in self.nodes:
            for x in n["inputs"]:
                if not x or x in produced or x in params:
                    continue
                if x not in self.const:
                    raise ModelFileError(
                        f"node '{n['name']}' (op '{n['op']}') in {self.source}: input '{x}' "
                        "is neither a graph input, an initializer nor computed by an earlier node"
                    )
                v = self.const[x]
                if v.dtype == object or v.dtype.kind not in "fiub":
                    raise ModelFileError(
                        f"node '{n['name']}' (op '{n['op']}') in {self.source}: input '{x}' "
                        "depends on a dimension unknown at import"
                    )
                if v.dtype.kind != "f" and not (n["op"] == "Gather" and n["inputs"][1] == x):
                    raise ModelFileError(
                        f"node '{n['name']}' (op '{n['op']}') in {self.source}: integer tensor "
                        f"'{x}' used as data is not supported"
                    )
                params[x] = np.ascontiguousarray(v, dtype=np.float32)
        for o in outputs:
            if o not in produced:
                raise ModelFileError(
                    f"output '{o}' in {self.source}: not computed by any node (a constant output)"
                )
        nodes, params = fold_batchnorm(self.nodes, params, outputs)
        nodes, params = prune(nodes, params, outputs)
        quantized = []
        for n in nodes:
            slot = 0 if n["op"] == "Gather" else 1 if n["op"] in ("Conv", "Gemm", "MatMul") else None
            if slot is not None and len(n["inputs"]) > slot and n["inputs"][slot] in params:
                if n["inputs"][slot] not in quantized:
                    quantized.append(n["inputs"][slot])
        task = "encoder" if any(i["dtype"] != "float32" for i in inputs) else "classifier"
        spec = {
            "format": "wkbnoise.graph/1",
            "task": task,
            "inputs": inputs,
            "outputs": outputs,
            "nodes": nodes,
            "quantized": quantized,
        }
        return build_graph(spec, params, self.source)

    def _node(self, node):
        if node.domain not in ("", "ai.onnx"):
            raise self._err(
                node,
                f"op {node.domain}.{node.op_type} (custom domain) is not supported; "
                f"supported: {', '.join(SUPPORTED)}",
            )
        op = node.op_type
        attrs = self._attrs(node)
        ins = [self._name(i) if i else "" for i in node.input]
        out = node.output[0] if node.output else None
        if op == "Constant":
            if "value" in attrs:
                self.const[out] = np.asarray(attrs["value"])
            else:
                key = next(
                    (k for k in ("value_float", "value_floats", "value_int", "value_ints") if k in attrs),
                    None,
                )
                if key is None:
                    raise self._err(node, f"constant attribute {sorted(attrs)} is not supported")
                dtype = np.float32 if "float" in key else np.int64
                self.const[out] = np.asarray(attrs[key], dtype=dtype)
            return
        if op in ("Identity", "Dropout") or (
            op == "Cast" and ins[0] not in self.const and attrs.get("to") == _FLOAT
        ):
            self.alias[out] = ins[0]
            return
        if op == "Shape":
            self.const[out] = self._shape_of(node, ins[0], attrs)
            return
        present = [i for i in ins if i]
        if present and all(i in self.const for i in present) and op in FOLDERS:
            try:
                vals = [self.const[i] if i else None for i in ins]
                results = FOLDERS[op](vals, attrs)
            except FoldError as exc:
                raise self._err(node, str(exc)) from None
            except Exception as exc:  # noqa: BLE001 - a malformed constant expression
                raise self._err(node, f"cannot fold constant inputs ({type(exc).__name__}: {exc})") from None
            for name, val in zip(node.output, results, strict=False):
                self.const[name] = np.asarray(val) if not isinstance(val, np.ndarray) else val
            return
        fn = getattr(self, f"_op_{op}", None)
        if fn is None:
            if op in _SIMPLE:
                self._emit(node, op, ins, {k: attrs.get(k, d) for k, d in _SIMPLE[op].items()})
                return
            raise self._err(
                node, f"op {op} is not supported by the wkbnoise importer; supported: {', '.join(SUPPORTED)}"
            )
        fn(node, ins, attrs)

    def _shape_of(self, node, name, attrs):
        if name in self.const:
            dims = list(np.shape(self.const[name]))
        elif name in self.dims:
            dims = [
                Sym(d) if isinstance(d, str) else (Sym(f"{name}:{i}") if d is None else int(d))
                for i, d in enumerate(self.dims[name])
            ]
        else:
            raise self._err(
                node, f"the shape of '{name}' is not known at import (ONNX shape inference failed)"
            )
        start, end = int(attrs.get("start", 0)), attrs.get("end")
        dims = dims[start : None if end is None else int(end)]
        arr = np.empty(len(dims), dtype=object)
        arr[:] = dims
        return arr if any(isinstance(d, Sym) for d in dims) else np.asarray(dims, dtype=np.int64)

    def _rank(self, name):
        if name in self.const:
            return np.ndim(self.const[name])
        d = self.dims.get(name)
        return None if d is None else len(d)

    # -- ops whose inputs become attributes ---------------------------------------------------------------
    def _op_Conv(self, node, ins, attrs):
        w = ins[1]
        if w not in self.const:
            raise self._err(node, "the weight must be an initializer")
        k = np.ndim(self.const[w]) - 2
        if k != 2:
            raise self._err(node, f"only 2-D convolutions are supported (this one is {k}-D)")
        kshape = list(np.shape(self.const[w])[2:])
        a = {
            "strides": list(attrs.get("strides", [1] * k)),
            "dilations": list(attrs.get("dilations", [1] * k)),
            "group": int(attrs.get("group", 1)),
        }
        a["pads"] = self._pads(node, ins[0], attrs, kshape, a["strides"], a["dilations"])
        self._emit(node, "Conv", ins[:3], a)

    def _pads(self, node, x, attrs, kshape, strides, dilations):
        auto = attrs.get("auto_pad", "NOTSET")
        k = len(kshape)
        if auto in ("NOTSET", ""):
            return list(attrs.get("pads", [0] * 2 * k))
        if auto == "VALID":
            return [0] * 2 * k
        dims = self.dims.get(x)
        if dims is None or any(not isinstance(d, int) for d in dims[2:]):
            raise self._err(
                node, f"auto_pad={auto} needs the input's spatial size, which is unknown at import"
            )
        begin, end = [], []
        for n, kk, s, d in zip(dims[2:], kshape, strides, dilations, strict=True):
            total = max((-(-n // s) - 1) * s + (kk - 1) * d + 1 - n, 0)
            small, big = total // 2, total - total // 2
            begin.append(small if auto == "SAME_UPPER" else big)
            end.append(big if auto == "SAME_UPPER" else small)
        return begin + end

    def _op_MaxPool(self, node, ins, attrs):
        if len(node.output) > 1 and node.output[1]:
            raise self._err(node, "the Indices output of MaxPool is not supported")
        ks = list(attrs["kernel_shape"])
        strides, dil = list(attrs.get("strides", [1] * len(ks))), list(attrs.get("dilations", [1] * len(ks)))
        a = {
            "kernel_shape": ks,
            "strides": strides,
            "pads": self._pads(node, ins[0], attrs, ks, strides, dil),
            "dilations": dil,
            "ceil_mode": int(attrs.get("ceil_mode", 0)),
        }
        self._emit(node, "MaxPool", ins[:1], a)

    def _op_AveragePool(self, node, ins, attrs):
        ks = list(attrs["kernel_shape"])
        strides = list(attrs.get("strides", [1] * len(ks)))
        a = {
            "kernel_shape": ks,
            "strides": strides,
            "pads": self._pads(node, ins[0], attrs, ks, strides, [1] * len(ks)),
            "ceil_mode": int(attrs.get("ceil_mode", 0)),
            "count_include_pad": int(attrs.get("count_include_pad", 0)),
        }
        self._emit(node, "AveragePool", ins[:1], a)

    def _op_Gemm(self, node, ins, attrs):
        a = {
            "alpha": float(attrs.get("alpha", 1.0)),
            "beta": float(attrs.get("beta", 1.0)),
            "transA": int(attrs.get("transA", 0)),
            "transB": int(attrs.get("transB", 0)),
        }
        w = ins[1]
        if a["transB"] == 0 and w in self.const and np.ndim(self.const[w]) == 2:
            # PyTorch layout [out, in]: a private transposed copy, so another reader of w is unaffected
            name = f"{w}.T"
            self.const[name] = np.ascontiguousarray(np.asarray(self.const[w]).T)
            ins = [ins[0], name, *ins[2:]]
            a["transB"] = 1
        self._emit(node, "Gemm", ins[:3], a)

    def _op_Clip(self, node, ins, attrs):
        if self.opset >= 11:
            lo, hi = self._float_input(node, ins, 1, "min"), self._float_input(node, ins, 2, "max")
        else:
            lo, hi = attrs.get("min"), attrs.get("max")
        self._emit(
            node, "Clip", ins[:1], {k: float(v) for k, v in (("min", lo), ("max", hi)) if v is not None}
        )

    def _op_Softmax(self, node, ins, attrs):
        axis = int(attrs.get("axis", -1 if self.opset >= 13 else 1))
        if self.opset < 13:
            rank = self._rank(ins[0])
            if rank is None or axis % rank != rank - 1:
                raise self._err(
                    node,
                    f"opset {self.opset} Softmax over the flattened axes {axis}.. of a rank "
                    f"{rank} tensor is not supported (only the last axis)",
                )
            axis = -1
        self._emit(node, "Softmax", ins[:1], {"axis": axis})

    def _op_Reshape(self, node, ins, attrs):
        if len(ins) < 2 or ins[1] not in self.const:
            raise self._err(node, "the target shape must be a constant at import")
        try:
            shape = resolve_shape(self.const[ins[1]], self.dims.get(ins[0], []))
        except FoldError as exc:
            raise self._err(node, str(exc)) from None
        a = {"shape": shape}
        if attrs.get("allowzero"):
            a["allowzero"] = 1
        self._emit(node, "Reshape", ins[:1], a)

    def _axes_op(self, node, ins, attrs, op, since, extra=None):
        axes = self._int_input(node, ins, 1, "axes") if self.opset >= since else attrs.get("axes")
        a = {} if axes is None else {"axes": [int(x) for x in axes]}
        self._emit(node, op, ins[:1], {**a, **(extra or {})})

    def _op_Squeeze(self, node, ins, attrs):
        self._axes_op(node, ins, attrs, "Squeeze", 13)

    def _op_Unsqueeze(self, node, ins, attrs):
        self._axes_op(node, ins, attrs, "Unsqueeze", 13)

    def _op_ReduceMean(self, node, ins, attrs):
        if self.opset >= 18 and attrs.get("noop_with_empty_axes") and (len(ins) < 2 or not ins[1]):
            self.alias[node.output[0]] = ins[0]
            return
        self._axes_op(node, ins, attrs, "ReduceMean", 18, {"keepdims": int(attrs.get("keepdims", 1))})

    def _op_Slice(self, node, ins, attrs):
        if self.opset >= 10:
            starts, ends = self._int_input(node, ins, 1, "starts"), self._int_input(node, ins, 2, "ends")
            axes, steps = self._int_input(node, ins, 3, "axes"), self._int_input(node, ins, 4, "steps")
        else:
            starts, ends, axes, steps = attrs["starts"], attrs["ends"], attrs.get("axes"), None
        axes = list(range(len(starts))) if axes is None else axes
        steps = [1] * len(starts) if steps is None else steps
        self._emit(
            node,
            "Slice",
            ins[:1],
            {"starts": list(starts), "ends": list(ends), "axes": list(axes), "steps": list(steps)},
        )

    def _op_Pad(self, node, ins, attrs):
        mode = attrs.get("mode", "constant")
        if self.opset >= 11:
            pads = self._int_input(node, ins, 1, "pads")
            value = self._float_input(node, ins, 2, "constant_value") or 0.0
            axes = self._int_input(node, ins, 3, "axes")
        else:
            pads, value, axes = list(attrs["pads"]), float(attrs.get("value", 0.0)), None
        if axes is not None:
            rank = self._rank(ins[0])
            if rank is None:
                raise self._err(node, "Pad with axes needs the input's rank, unknown at import")
            full = [0] * 2 * rank
            for i, ax in enumerate(axes):
                full[ax % rank], full[rank + ax % rank] = pads[i], pads[len(axes) + i]
            pads = full
        self._emit(node, "Pad", ins[:1], {"pads": pads, "mode": mode, "value": value})

    def _op_Gather(self, node, ins, attrs):
        axis = int(attrs.get("axis", 0))
        if ins[1] not in self.const:
            self._emit(node, "Gather", ins[:2], {"axis": axis})
            return
        # constant indices (x[:, 0], a contiguous range): a Slice, plus a Squeeze for a scalar index
        idx = self.const[ins[1]]
        if has_symbols(idx):
            raise self._err(node, "the indices depend on a dimension unknown at import")
        idx = np.asarray(idx, dtype=np.int64)
        flat = idx.reshape(-1)
        if (
            idx.ndim > 1
            or flat.size == 0
            or np.any(flat < 0) != np.all(flat < 0)
            or np.any(np.diff(flat) != 1)
        ):
            raise self._err(node, f"constant indices {flat.tolist()[:8]} that are not one contiguous range")
        start = int(flat[0])
        end = start + flat.size if start + flat.size != 0 else 2**62
        sl = {"starts": [start], "ends": [end], "axes": [axis], "steps": [1]}
        if idx.ndim == 1:
            self._emit(node, "Slice", ins[:1], sl)
            return
        mid = f"{node.output[0]}/sliced"
        self._emit(node, "Slice", ins[:1], sl, outputs=[mid])
        self._emit(node, "Squeeze", [mid], {"axes": [axis]})

    def _op_Expand(self, node, ins, attrs):
        self._emit(node, "Expand", ins[:1], {"shape": self._int_input(node, ins, 1, "shape")})

    def _op_Tile(self, node, ins, attrs):
        self._emit(node, "Tile", ins[:1], {"repeats": self._int_input(node, ins, 1, "repeats")})

    def _op_BatchNormalization(self, node, ins, attrs):
        if len([o for o in node.output if o]) > 1 or attrs.get("training_mode"):
            raise self._err(node, "BatchNormalization in training mode (running statistics outputs)")
        for i in ins[1:5]:
            if i not in self.const:
                raise self._err(node, "scale, bias, mean and variance must be initializers")
        self._emit(node, "BatchNormalization", ins[:5], {"epsilon": float(attrs.get("epsilon", 1e-5))})

    def _op_LayerNormalization(self, node, ins, attrs):
        if len([o for o in node.output if o]) > 1:
            raise self._err(node, "the Mean / InvStdDev outputs of LayerNormalization are not supported")
        self._emit(
            node,
            "LayerNormalization",
            ins[:3],
            {"axis": int(attrs.get("axis", -1)), "epsilon": float(attrs.get("epsilon", 1e-5))},
        )

    def _op_Split(self, node, ins, attrs):
        """As one Slice per output (the runtime has no Split)."""
        axis = int(attrs.get("axis", 0))
        sizes = self._int_input(node, ins, 1, "split") if self.opset >= 13 else attrs.get("split")
        if sizes is None:
            dims = self.dims.get(ins[0])
            n = len(node.output)
            if dims is None or not isinstance(dims[axis], int) or dims[axis] <= 0:
                raise self._err(node, "an equal Split needs the split axis' size, unknown at import")
            chunk = -(-dims[axis] // n)
            sizes = [min(chunk, dims[axis] - i * chunk) for i in range(n)]
        start = 0
        for out, size in zip(node.output, sizes, strict=True):
            if out:
                self._emit(
                    node,
                    "Slice",
                    ins[:1],
                    {"starts": [start], "ends": [start + int(size)], "axes": [axis], "steps": [1]},
                    outputs=[out],
                )
            start += int(size)

    def _op_Transpose(self, node, ins, attrs):
        perm = attrs.get("perm")
        if perm is None:
            rank = self._rank(ins[0])
            if rank is None:
                raise self._err(node, "Transpose without perm needs the input's rank, unknown at import")
            perm = list(range(rank))[::-1]
        self._emit(node, "Transpose", ins[:1], {"perm": [int(p) for p in perm]})

    def _op_Cast(self, node, ins, attrs):
        raise self._err(
            node,
            f"Cast of a run-time tensor to ONNX type {attrs.get('to')} is not supported "
            "(only float to float)",
        )


#: ops emitted as they are, with the attributes they keep and their ONNX defaults
_SIMPLE = {
    **{
        op: {}
        for op in (
            "MatMul",
            "Add",
            "Sub",
            "Mul",
            "Div",
            "Pow",
            "Relu",
            "Sigmoid",
            "Tanh",
            "Erf",
            "Sqrt",
            "HardSwish",
            "GlobalAveragePool",
        )
    },
    "HardSigmoid": {"alpha": 0.2, "beta": 0.5},
    "Gelu": {"approximate": "none"},
    "Flatten": {"axis": 1},
    "Concat": {"axis": None},
}
