"""A Keras HDF5 model file (``.h5`` / ``.hdf5``) -> a wkbnoise graph and its float32 weights, with h5py only.

The file's ``model_config`` attribute (JSON) gives the layers and how they connect (``Sequential`` or
``Functional``; Keras 2's layout and Keras 3's legacy ``model.save("m.h5")`` both), ``model_weights/<layer>``
their weights. No TensorFlow or Keras is imported and nothing in the file runs.

The model keeps its own input layout: an image input stays NHWC at the graph boundary, a ``Transpose``
brings it to the runtime's NCHW before the first convolution, ``Flatten`` / ``Reshape`` / ``Dense`` on a
feature map see it in NHWC order again (so the Dense weights apply as in Keras), and an image-shaped output
is returned NHWC. Kernels take PyTorch layouts (conv ``(C_out, C_in / groups, kh, kw)``, dense
``(out, in)``) under the names ``<layer>.weight`` / ``<layer>.bias`` (``<layer>.depthwise.weight`` and
``<layer>.pointwise.weight`` for a separable convolution); a BatchNormalization right after a convolution
or dense layer without activation is folded into it. ``padding="same"`` follows Keras' rule (the extra
pixel of an odd padding goes at the bottom / right); an average pool excludes the padding from its mean,
except in a file saved by Keras 3 on its torch backend, which pads an uneven 'same' pool with copies of the
edge pixels, and so does the graph.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelFileError
from ._graph import build_graph, fold_batchnorm, prune, unique_name

__all__ = ["read_keras_h5", "SUPPORTED_LAYERS"]

SUPPORTED_LAYERS = (
    "InputLayer",
    "Conv2D",
    "DepthwiseConv2D",
    "SeparableConv2D",
    "Dense",
    "BatchNormalization",
    "Activation",
    "ReLU",
    "Softmax",
    "MaxPooling2D",
    "AveragePooling2D",
    "GlobalAveragePooling2D",
    "Flatten",
    "Dropout",
    "Add",
    "Subtract",
    "Multiply",
    "Concatenate",
    "Reshape",
    "ZeroPadding2D",
)
_ALIASES = {
    "Convolution2D": "Conv2D",
    "MaxPool2D": "MaxPooling2D",
    "AvgPool2D": "AveragePooling2D",
    "GlobalAvgPool2D": "GlobalAveragePooling2D",
    "SpatialDropout2D": "Dropout",
}
_TO_NCHW, _TO_NHWC = [0, 3, 1, 2], [0, 2, 3, 1]


@dataclass(frozen=True)
class _T:
    """A Keras tensor: its value name, whether that value is held NCHW, and its Keras (NHWC) shape."""

    name: str
    nchw: bool
    shape: tuple


def read_keras_h5(path):
    """Read a Keras ``.h5`` / ``.hdf5`` model into ``(Graph, params)``.

    Parameters
    ----------
    path : str or Path
        A file written by ``model.save("model.h5")`` (Keras 2 or 3).

    Returns
    -------
    graph : wkbnoise.runtime.graph.Graph
    params : dict of str to ndarray of float32
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such Keras file")
    if zipfile.is_zipfile(path):
        raise ModelFileError(
            f"{path}: a Keras 3 '.keras' zip archive is not supported; save the model as HDF5 "
            "with model.save('model.h5')"
        )
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ModelFileError(f"{path}: not an HDF5 file ({exc})") from None
    with f:
        raw = f.attrs.get("model_config")
        if raw is None:
            raise ModelFileError(
                f"{path}: no 'model_config' attribute (a weights-only file from save_weights?); "
                "save the whole model with model.save('model.h5')"
            )
        try:
            config = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
        except json.JSONDecodeError as exc:
            raise ModelFileError(f"{path}: model_config is not JSON ({exc})") from None
        version, backend = (f.attrs.get(k, b"") for k in ("keras_version", "backend"))
        version, backend = (v.decode() if isinstance(v, bytes) else str(v) for v in (version, backend))
        root = f["model_weights"] if "model_weights" in f else f
        return _Builder(root, str(path), version, backend).run(config)


def _layer_weights(root, name, source) -> dict:
    """The weights of one layer by short name (``kernel``, ``bias``, ``gamma`` ...), as float32."""
    if name not in root:
        return {}
    g = root[name]
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in g.attrs.get("weight_names", [])]
    out = {}
    for n in names:
        if n not in g:
            raise ModelFileError(f"layer '{name}' in {source}: weight '{n}' listed but not stored")
        short = n.rsplit("/", 1)[-1].split(":")[0]
        out[short] = np.asarray(g[n], dtype=np.float32)
    return out


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _same_pads(n, k, s, d) -> tuple[int, int]:
    """Keras 'same': output ceil(n / s), total padding split with the odd pixel after."""
    if n is None:
        if s != 1:
            raise ValueError("padding='same' with stride > 1 needs the input size")
        total = (k - 1) * d
    else:
        total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


class _Builder:
    def __init__(self, root, source, version, backend=""):
        self.root, self.source, self.keras2 = root, source, version.startswith("2")
        self.backend = backend
        self.nodes: list[dict] = []
        self.params: dict[str, np.ndarray] = {}
        self.values: set[str] = set()
        self.node_names: set[str] = set()
        self.quantized: list[str] = []
        self.inputs: list[dict] = []
        self._converted: dict[tuple, _T] = {}

    # -- plumbing -----------------------------------------------------------------------------------------
    def err(self, layer, msg) -> ModelFileError:
        return ModelFileError(f"layer '{layer['name']}' ({layer['class_name']}) in {self.source}: {msg}")

    def value(self, base) -> str:
        name = unique_name(base, self.values)
        self.values.add(name)
        return name

    def emit(self, op, name, inputs, attrs, out_base) -> str:
        out = self.value(out_base)
        self.nodes.append(
            {
                "op": op,
                "name": unique_name(name, self.node_names),
                "inputs": list(inputs),
                "outputs": [out],
                "attrs": attrs,
            }
        )
        self.node_names.add(self.nodes[-1]["name"])
        return out

    def param(self, name, array, quantized=False) -> str:
        self.params[name] = np.ascontiguousarray(array, dtype=np.float32)
        if quantized:
            self.quantized.append(name)
        return name

    def nchw(self, t: _T, lname) -> _T:
        if t.nchw or len(t.shape) != 4:
            return t
        key = (t.name, True)
        if key not in self._converted:
            self._converted[key] = _T(
                self.emit("Transpose", f"{lname}/to_nchw", [t.name], {"perm": _TO_NCHW}, f"{t.name}/nchw"),
                True,
                t.shape,
            )
        return self._converted[key]

    def nhwc(self, t: _T, lname) -> _T:
        if not t.nchw:
            return t
        key = (t.name, False)
        if key not in self._converted:
            self._converted[key] = _T(
                self.emit("Transpose", f"{lname}/to_nhwc", [t.name], {"perm": _TO_NHWC}, f"{t.name}/nhwc"),
                False,
                t.shape,
            )
        return self._converted[key]

    # -- model structure ----------------------------------------------------------------------------------
    def run(self, config):
        cls = config.get("class_name")
        cfg = config.get("config", {})
        if cls not in ("Sequential", "Functional", "Model") or not isinstance(cfg.get("layers"), list):
            raise ModelFileError(
                f"{self.source}: model class {cls!r} is not supported (Sequential or Functional)"
            )
        layers = cfg["layers"]
        for layer in layers:
            layer.setdefault("name", layer.get("config", {}).get("name"))
            layer["class_name"] = _ALIASES.get(layer.get("class_name"), layer.get("class_name"))
        if cls == "Sequential":
            outs = self._sequential(cfg, layers)
        else:
            outs = self._functional(cfg, layers)
        outputs = []
        for t, lname in outs:
            t = self.nhwc(t, lname)
            outputs.append(t.name)
        nodes, params = fold_batchnorm(self.nodes, self.params, outputs)
        nodes, params = prune(nodes, params, outputs)
        spec = {
            "format": "wkbnoise.graph/1",
            "task": "classifier",
            "inputs": self.inputs,
            "outputs": outputs,
            "nodes": nodes,
            "quantized": [q for q in self.quantized if q in params],
        }
        return build_graph(spec, params, self.source)

    def _input(self, name, shape) -> _T:
        shape = tuple(None if d is None else int(d) for d in shape)
        gname = "images" if len(shape) == 4 and not self.inputs else name
        self.values.add(gname)
        self.inputs.append({"name": gname, "dtype": "float32", "shape": [None, *shape[1:]]})
        return _T(gname, False, (None, *shape[1:]))

    def _sequential(self, cfg, layers):
        first = layers[0] if layers else {}
        if first.get("class_name") == "InputLayer":
            c = first["config"]
            t = self._input(c.get("name", "input"), c.get("batch_shape") or c.get("batch_input_shape"))
            layers = layers[1:]
        else:
            c = first.get("config", {})
            shape = c.get("batch_input_shape") or c.get("batch_shape") or cfg.get("build_input_shape")
            if shape is None:
                raise ModelFileError(f"{self.source}: the Sequential model has no input shape (never built)")
            t = self._input("input", shape)
        for layer in layers:
            t = self._layer(layer, [t])
        return [(t, layers[-1]["name"] if layers else "input")]

    @staticmethod
    def _refs(node) -> list[tuple]:
        """The (layer, node index, tensor index) triples an inbound node reads, in order."""
        found = []

        def walk(v):
            if isinstance(v, dict):
                if v.get("class_name") == "__keras_tensor__":
                    h = v["config"]["keras_history"]
                    found.append((h[0], int(h[1]), int(h[2])))
                else:
                    for x in v.values():
                        walk(x)
            elif isinstance(v, list):
                if len(v) >= 3 and isinstance(v[0], str) and isinstance(v[1], int) and isinstance(v[2], int):
                    found.append((v[0], v[1], v[2]))  # Keras 2: [name, node, tensor, kwargs]
                else:
                    for x in v:
                        walk(x)

        walk(node.get("args", []) if isinstance(node, dict) else node)
        return found

    @staticmethod
    def _endpoints(v) -> list[tuple]:
        if v and isinstance(v[0], str):
            v = [v]
        return [(e[0], int(e[1]), int(e[2])) for e in v]

    def _functional(self, cfg, layers):
        tensors: dict[tuple, _T] = {}
        for layer in layers:
            if layer["class_name"] == "InputLayer":
                c = layer["config"]
                tensors[(layer["name"], 0, 0)] = self._input(
                    layer["name"], c.get("batch_shape") or c.get("batch_input_shape")
                )
                continue
            for k, node in enumerate(layer.get("inbound_nodes", [])):
                refs = self._refs(node)
                missing = [r for r in refs if r not in tensors]
                if missing:
                    raise self.err(
                        layer,
                        f"input {missing[0]} is not computed before it (nested models are not supported)",
                    )
                tensors[(layer["name"], k, 0)] = self._layer(layer, [tensors[r] for r in refs])
        outs = []
        for ref in self._endpoints(cfg.get("output_layers", [])):
            if ref not in tensors:
                raise ModelFileError(f"{self.source}: output {ref} is not computed by the model's layers")
            outs.append((tensors[ref], ref[0]))
        return outs

    # -- layers -------------------------------------------------------------------------------------------
    def _layer(self, layer, ins: list[_T]) -> _T:
        cls = layer["class_name"]
        fn = getattr(self, f"_l_{cls}", None)
        if fn is None:
            raise self.err(layer, f"layer {cls} is not supported; supported: {', '.join(SUPPORTED_LAYERS)}")
        c = layer.get("config", {})
        if c.get("data_format", "channels_last") != "channels_last":
            raise self.err(layer, f"data_format={c['data_format']!r} is not supported (channels_last only)")
        try:
            return fn(layer, c, ins, _layer_weights(self.root, layer["name"], self.source))
        except ModelFileError:
            raise
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise self.err(
                layer, f"malformed layer config or weights ({type(exc).__name__}: {exc})"
            ) from None

    def activation(self, layer, t: _T, act) -> _T:
        name = layer["name"]
        if isinstance(act, dict):  # Keras 3 may serialize {"class_name": "function", "config": "relu"}
            act = act.get("config") if isinstance(act.get("config"), str) else act.get("class_name")
        act = str(act or "linear")
        unary = {
            "relu": ("Relu", {}),
            "sigmoid": ("Sigmoid", {}),
            "tanh": ("Tanh", {}),
            "relu6": ("Clip", {"min": 0.0, "max": 6.0}),
            "hard_swish": ("HardSwish", {}),
            "hard_silu": ("HardSwish", {}),
            "exponential": ("Exp", {}),
            "gelu": ("Gelu", {"approximate": "none"}),
            "hard_sigmoid": (
                "HardSigmoid",
                {"alpha": 0.2, "beta": 0.5} if self.keras2 else {"alpha": 1.0 / 6.0, "beta": 0.5},
            ),
            "leaky_relu": ("LeakyRelu", {"alpha": 0.2}),
        }
        if act == "linear":
            return t
        if act in unary:
            op, attrs = unary[act]
            return _T(self.emit(op, f"{name}/{act}", [t.name], attrs, f"{name}/{act}"), t.nchw, t.shape)
        if act == "softmax":
            return self.softmax(name, t, -1)
        if act in ("swish", "silu"):
            s = self.emit("Sigmoid", f"{name}/sigmoid", [t.name], {}, f"{name}/sigmoid")
            return _T(self.emit("Mul", f"{name}/swish", [t.name, s], {}, f"{name}/swish"), t.nchw, t.shape)
        raise self.err(
            layer,
            f"activation {act!r} is not supported; supported: linear, softmax, swish, {', '.join(unary)}",
        )

    def axis(self, t: _T, axis: int) -> int:
        """A Keras axis of ``t`` as an axis of its stored value."""
        rank = len(t.shape)
        a = axis % rank
        return [0, 2, 3, 1][a] if t.nchw else a

    def softmax(self, name, t, axis) -> _T:
        return _T(
            self.emit(
                "Softmax", f"{name}/softmax", [t.name], {"axis": self.axis(t, axis)}, f"{name}/softmax"
            ),
            t.nchw,
            t.shape,
        )

    def _window(self, layer, c, t: _T, kernel, strides, dil):
        """(pads ONNX order, output shape) of a 2-D window over NHWC shape ``t.shape``."""
        if len(t.shape) != 4:
            raise self.err(layer, f"expects an image (N, H, W, C) input; got shape {list(t.shape)}")
        padding = c.get("padding", "valid")
        out_hw, begin, end = [], [], []
        for n, k, s, d in zip(t.shape[1:3], kernel, strides, dil, strict=True):
            if padding == "same":
                b, e = _same_pads(n, k, s, d)
            elif padding == "valid":
                b = e = 0
            else:
                raise self.err(layer, f"padding={padding!r} is not supported ('same' or 'valid')")
            begin.append(b)
            end.append(e)
            out_hw.append(None if n is None else (n + b + e - (k - 1) * d - 1) // s + 1)
        return begin + end, out_hw

    def conv(self, layer, t, w, b, strides, dil, group, pads, name_suffix="") -> str:
        lname = layer["name"]
        inputs = [t.name, self.param(f"{lname}{name_suffix}.weight", w, quantized=True)]
        if b is not None:
            inputs.append(self.param(f"{lname}.bias", b))
        return self.emit(
            "Conv",
            f"{lname}{name_suffix}",
            inputs,
            {"strides": list(strides), "pads": pads, "dilations": list(dil), "group": group},
            f"{lname}{name_suffix}",
        )

    def _l_Conv2D(self, layer, c, ins, w):
        t = self.nchw(ins[0], layer["name"])
        k, s, d = _pair(c["kernel_size"]), _pair(c.get("strides", 1)), _pair(c.get("dilation_rate", 1))
        pads, hw = self._window(layer, c, t, k, s, d)
        kernel = w["kernel"]  # (kh, kw, C_in / groups, C_out)
        out = self.conv(
            layer, t, kernel.transpose(3, 2, 0, 1), w.get("bias"), s, d, int(c.get("groups", 1)), pads
        )
        return self.activation(layer, _T(out, True, (None, *hw, kernel.shape[3])), c.get("activation"))

    def _depthwise(self, layer, c, t, dk, s, d, bias, suffix):
        kh, kw, cin, mult = dk.shape
        pads, hw = self._window(layer, c, t, (kh, kw), s, d)
        weight = dk.transpose(2, 3, 0, 1).reshape(
            cin * mult, 1, kh, kw
        )  # channel c*mult + m <- dk[..., c, m]
        out = self.conv(layer, t, weight, bias, s, d, cin, pads, suffix)
        return _T(out, True, (None, *hw, cin * mult))

    def _l_DepthwiseConv2D(self, layer, c, ins, w):
        t = self.nchw(ins[0], layer["name"])
        s, d = _pair(c.get("strides", 1)), _pair(c.get("dilation_rate", 1))
        dk = w["depthwise_kernel"] if "depthwise_kernel" in w else w["kernel"]  # Keras 2 : Keras 3
        out = self._depthwise(layer, c, t, dk, s, d, w.get("bias"), "")
        return self.activation(layer, out, c.get("activation"))

    def _l_SeparableConv2D(self, layer, c, ins, w):
        t = self.nchw(ins[0], layer["name"])
        s, d = _pair(c.get("strides", 1)), _pair(c.get("dilation_rate", 1))
        mid = self._depthwise(layer, c, t, w["depthwise_kernel"], s, d, None, ".depthwise")
        pk = w["pointwise_kernel"]  # (1, 1, C_in * mult, C_out)
        out = self.conv(
            layer, mid, pk.transpose(3, 2, 0, 1), w.get("bias"), (1, 1), (1, 1), 1, [0, 0, 0, 0], ".pointwise"
        )
        return self.activation(layer, _T(out, True, (*mid.shape[:3], pk.shape[3])), c.get("activation"))

    def _l_Dense(self, layer, c, ins, w):
        lname = layer["name"]
        t = self.nhwc(ins[0], lname)
        kernel, bias = w["kernel"], w.get("bias")
        if len(t.shape) == 2:
            inputs = [t.name, self.param(f"{lname}.weight", kernel.T, quantized=True)]
            if bias is not None:
                inputs.append(self.param(f"{lname}.bias", bias))
            out = self.emit(
                "Gemm", lname, inputs, {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 1}, lname
            )
        else:  # applies to the last axis of a (N, ..., C) tensor
            out = self.emit(
                "MatMul", lname, [t.name, self.param(f"{lname}.weight", kernel, quantized=True)], {}, lname
            )
            if bias is not None:
                out = self.emit(
                    "Add", f"{lname}/bias", [out, self.param(f"{lname}.bias", bias)], {}, f"{lname}/bias"
                )
        return self.activation(layer, _T(out, False, (*t.shape[:-1], kernel.shape[1])), c.get("activation"))

    def _l_BatchNormalization(self, layer, c, ins, w):
        lname, t = layer["name"], ins[0]
        axis = c.get("axis", -1)
        axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
        if not isinstance(axis, int) or axis % len(t.shape) != len(t.shape) - 1:
            raise self.err(layer, f"axis={axis} is not supported (the channel axis, -1, only)")
        mean, var = w["moving_mean"], w["moving_variance"]
        gamma, beta = w.get("gamma", np.ones_like(mean)), w.get("beta", np.zeros_like(mean))
        eps = float(c.get("epsilon", 1e-3))
        if t.nchw or len(t.shape) == 2:
            names = [
                self.param(f"{lname}.{k}", v)
                for k, v in (
                    ("gamma", gamma),
                    ("beta", beta),
                    ("moving_mean", mean),
                    ("moving_variance", var),
                )
            ]
            out = self.emit("BatchNormalization", lname, [t.name, *names], {"epsilon": eps}, lname)
            return _T(out, t.nchw, t.shape)
        s = gamma / np.sqrt(var.astype(np.float64) + eps)
        m = self.emit(
            "Mul", f"{lname}/scale", [t.name, self.param(f"{lname}.scale", s)], {}, f"{lname}/scale"
        )
        out = self.emit("Add", lname, [m, self.param(f"{lname}.shift", beta - mean * s)], {}, lname)
        return _T(out, False, t.shape)

    def _l_Activation(self, layer, c, ins, w):
        return self.activation(layer, ins[0], c.get("activation"))

    def _l_ReLU(self, layer, c, ins, w):
        t, lname = ins[0], layer["name"]
        mx, slope, thr = (
            c.get("max_value"),
            float(c.get("negative_slope") or 0.0),
            float(c.get("threshold") or 0.0),
        )
        if thr != 0.0:
            raise self.err(layer, f"threshold={thr} is not supported")
        if slope != 0.0:
            if mx is not None:
                raise self.err(layer, "negative_slope together with max_value is not supported")
            out = self.emit("LeakyRelu", lname, [t.name], {"alpha": slope}, lname)
        elif mx is not None:
            out = self.emit("Clip", lname, [t.name], {"min": 0.0, "max": float(mx)}, lname)
        else:
            out = self.emit("Relu", lname, [t.name], {}, lname)
        return _T(out, t.nchw, t.shape)

    def _l_Softmax(self, layer, c, ins, w):
        axis = c.get("axis", -1)
        axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
        return self.softmax(layer["name"], ins[0], int(axis))

    def _pool(self, layer, c, ins, op):
        t = self.nchw(ins[0], layer["name"])
        k = _pair(c.get("pool_size", 2))
        s = _pair(c.get("strides") or k)
        pads, hw = self._window(layer, c, t, k, s, (1, 1))
        attrs = {"kernel_shape": list(k), "strides": list(s), "pads": pads}
        x = t.name
        if op == "AveragePool":
            attrs["count_include_pad"] = 0  # Keras averages over the pixels inside the image ...
            if self.backend == "torch" and pads[:2] != pads[2:]:
                # ... except Keras 3 on torch, which pads an uneven 'same' by repeating the edge pixels
                x = self.emit(
                    "Pad",
                    f"{layer['name']}/edge",
                    [x],
                    {"pads": [0, 0, *pads[:2], 0, 0, *pads[2:]], "mode": "edge"},
                    f"{layer['name']}/edge",
                )
                attrs["pads"] = [0, 0, 0, 0]
        out = self.emit(op, layer["name"], [x], attrs, layer["name"])
        return _T(out, True, (None, *hw, t.shape[3]))

    def _l_MaxPooling2D(self, layer, c, ins, w):
        return self._pool(layer, c, ins, "MaxPool")

    def _l_AveragePooling2D(self, layer, c, ins, w):
        return self._pool(layer, c, ins, "AveragePool")

    def _l_GlobalAveragePooling2D(self, layer, c, ins, w):
        lname = layer["name"]
        t = self.nchw(ins[0], lname)
        if len(t.shape) != 4:
            raise self.err(layer, f"expects an image input; got shape {list(t.shape)}")
        out = self.emit("GlobalAveragePool", lname, [t.name], {}, lname)
        if c.get("keepdims"):
            return _T(out, True, (None, 1, 1, t.shape[3]))
        out = self.emit("Flatten", f"{lname}/flatten", [out], {"axis": 1}, f"{lname}/flatten")
        return _T(out, False, (None, t.shape[3]))

    def _l_Flatten(self, layer, c, ins, w):
        t = self.nhwc(ins[0], layer["name"])
        n = int(np.prod(t.shape[1:])) if all(d is not None for d in t.shape[1:]) else None
        return _T(self.emit("Flatten", layer["name"], [t.name], {"axis": 1}, layer["name"]), False, (None, n))

    def _l_Dropout(self, layer, c, ins, w):
        return ins[0]

    def _l_Reshape(self, layer, c, ins, w):
        t = self.nhwc(ins[0], layer["name"])
        target = [int(d) for d in c["target_shape"]]
        if -1 in target and all(d is not None for d in t.shape[1:]):
            known = int(np.prod([d for d in target if d != -1]))
            target[target.index(-1)] = int(np.prod(t.shape[1:])) // known
        out = self.emit("Reshape", layer["name"], [t.name], {"shape": [0, *target]}, layer["name"])
        return _T(out, False, (None, *[None if d == -1 else d for d in target]))

    def _l_ZeroPadding2D(self, layer, c, ins, w):
        t = self.nchw(ins[0], layer["name"])
        p = c.get("padding", 1)
        (top, bottom), (left, right) = (
            ((p, p), (p, p))
            if isinstance(p, int)
            else tuple(_pair(v) for v in p)
            if isinstance(p[0], list | tuple)
            else ((p[0], p[0]), (p[1], p[1]))
        )
        out = self.emit(
            "Pad",
            layer["name"],
            [t.name],
            {"pads": [0, 0, top, left, 0, 0, bottom, right], "mode": "constant", "value": 0.0},
            layer["name"],
        )
        h, wd = t.shape[1:3]
        return _T(
            out,
            True,
            (
                None,
                None if h is None else h + top + bottom,
                None if wd is None else wd + left + right,
                t.shape[3],
            ),
        )

    def _merge(self, layer, ins, op):
        if len(ins) < 2:
            raise self.err(layer, f"needs at least two inputs; got {len(ins)}")
        nchw = any(t.nchw for t in ins)
        ts = [self.nchw(t, layer["name"]) if nchw else t for t in ins]
        out = ts[0].name
        for i, t in enumerate(ts[1:]):
            out = self.emit(
                op,
                layer["name"] if i == len(ts) - 2 else f"{layer['name']}/{i}",
                [out, t.name],
                {},
                layer["name"] if i == len(ts) - 2 else f"{layer['name']}/{i}",
            )
        return _T(out, nchw, ts[0].shape)

    def _l_Add(self, layer, c, ins, w):
        return self._merge(layer, ins, "Add")

    def _l_Subtract(self, layer, c, ins, w):
        return self._merge(layer, ins, "Sub")

    def _l_Multiply(self, layer, c, ins, w):
        return self._merge(layer, ins, "Mul")

    def _l_Concatenate(self, layer, c, ins, w):
        nchw = any(t.nchw for t in ins)
        ts = [self.nchw(t, layer["name"]) if nchw else t for t in ins]
        axis = int(c.get("axis", -1))
        a = axis % len(ts[0].shape)
        out = self.emit(
            "Concat", layer["name"], [t.name for t in ts], {"axis": self.axis(ts[0], axis)}, layer["name"]
        )
        size = [t.shape[a] for t in ts]
        shape = list(ts[0].shape)
        shape[a] = None if any(s is None for s in size) else sum(size)
        return _T(out, nchw, tuple(shape))
