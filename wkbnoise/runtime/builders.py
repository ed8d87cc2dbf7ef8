"""Architectures as graph builders: a weight file's tensors + an architecture's config -> (Graph, params).

:class:`GraphBuilder` emits the nodes of one network and reads the file's tensors by their PyTorch /
Hugging Face names; BatchNorm that follows a convolution is folded into it as the tensors are read
(:func:`~wkbnoise.runtime.base.fold_batchnorm`). Once built, :meth:`GraphBuilder.finish` compares the
tensors it read with the file's (missing, unexpected, wrong shape) before any model exists. The zoo
architectures (:data:`ARCHITECTURES`) are built here; :mod:`wkbnoise.importers.huggingface` builds Hugging
Face BERT and ViT checkpoints with the same builder.
"""

from __future__ import annotations

import json

import numpy as np

from ..errors import ModelFileError
from .base import fold_batchnorm
from .graph import Graph, Node

__all__ = ["GraphBuilder", "ARCHITECTURES", "build_zoo", "image_preprocess"]

_F32 = np.float32


def _listing(items, limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def image_preprocess(mean, std, layout: str = "NCHW", scale: float = 1.0 / 255.0) -> dict:
    """The graph's ``preprocess`` entry: ``x = (pixels * scale - mean) / std`` per channel."""
    as_list = (lambda v: [float(a) for a in v]) if np.ndim(mean) else (lambda v: [float(v)])
    return {"kind": "image", "layout": layout, "scale": float(scale), "mean": as_list(mean), "std": as_list(std)}


class GraphBuilder:
    """Nodes and initializers of one network, read from a file's tensors.

    Parameters
    ----------
    tensors : dict of str to ndarray
        The file's float32 tensors.
    describe : str
        What is being built, for messages (e.g. ``"lenet5 with config {...}"``).
    path : str or Path, optional
        The file, for messages.
    """

    def __init__(self, tensors: dict, describe: str, path=None):
        self.tensors = tensors
        self.describe = describe
        self.path = path
        self.expected: dict[str, tuple] = {}
        self.nodes: list[Node] = []
        self.params: dict[str, np.ndarray] = {}
        self.quantized: list[str] = []
        self._names: set[str] = set()
        self.bn_eps = 1e-5  # BatchNorm epsilon of the folded BatchNorms

    # -- tensors ------------------------------------------------------------------------------------------
    def tensor(self, name: str, shape) -> np.ndarray:
        """The file's tensor ``name`` (zeros of ``shape`` when it is absent or misshapen: :meth:`finish` says)."""
        shape = tuple(int(s) for s in shape)
        self.expected[name] = shape
        t = self.tensors.get(name)
        return t if t is not None and t.shape == shape else np.zeros(shape, _F32)

    def param(self, name: str, array, *, quantized: bool = False) -> str:
        """Add an initializer (read-only float32 or int64) and return its name."""
        a = np.asarray(array)
        if a.dtype.kind == "f" and a.dtype != _F32:
            a = a.astype(_F32)
        self.params[name] = a
        if quantized and name not in self.quantized:
            self.quantized.append(name)
        return name

    def take(self, name: str, shape, *, quantized: bool = False) -> str:
        """Read the file's tensor ``name`` as an initializer of the same name."""
        return self.param(name, self.tensor(name, shape), quantized=quantized)

    # -- nodes --------------------------------------------------------------------------------------------
    def node(self, op: str, inputs, attrs=None, *, name: str | None = None, outputs: int = 1):
        """Append a node; its output values are named after the node (``name``, ``name:1``, ...)."""
        base = name or f"{op.split('.')[-1].lower()}_{len(self.nodes)}"
        node_name, k = base, 1
        while node_name in self._names:
            node_name, k = f"{base}_{k}", k + 1
        self._names.add(node_name)
        outs = tuple(node_name if i == 0 else f"{node_name}:{i}" for i in range(outputs))
        self.nodes.append(Node(op, node_name, tuple(inputs), outs, dict(attrs or {})))
        return outs[0] if outputs == 1 else outs

    def conv(self, x: str, prefix: str, shape, *, stride=1, pad=0, group=1, bias=False, bn=None,
             name=None) -> str:
        """Conv ``prefix.weight`` (OIHW ``shape``, optional bias), with BatchNorm ``bn`` folded in."""
        w = self.tensor(prefix + ".weight", shape)
        b = self.tensor(prefix + ".bias", shape[:1]) if bias else None
        if bn is not None:
            w, b = fold_batchnorm(w, b, *(self.tensor(f"{bn}.{s}", shape[:1])
                                          for s in ("weight", "bias", "running_mean", "running_var")), self.bn_eps)
        inputs = [self.param(prefix + ".weight", w, quantized=True)]
        if b is not None:
            inputs.append(self.param(prefix + ".bias", b))
        k = (shape[2], shape[3])
        attrs = {"strides": [stride, stride], "pads": [pad] * 4, "group": group, "kernel_shape": list(k)}
        return self.node("Conv", [x, *inputs], attrs, name=name or prefix)

    def linear(self, x: str, prefix: str, shape, *, bias: bool = True, name=None) -> str:
        """PyTorch Linear ``prefix`` (weight ``shape`` = (out, in)) as ``Gemm{transB: 1}``."""
        inputs = [x, self.take(prefix + ".weight", shape, quantized=True)]
        if bias:
            inputs.append(self.take(prefix + ".bias", shape[:1]))
        return self.node("Gemm", inputs, {"transB": 1}, name=name or prefix)

    def layer_norm(self, x: str, prefix: str, dim: int, eps: float, name=None) -> str:
        """LayerNorm ``prefix`` over the last axis."""
        return self.node("LayerNormalization", [x, self.take(prefix + ".weight", (dim,)),
                                                self.take(prefix + ".bias", (dim,))],
                         {"axis": -1, "epsilon": float(eps)}, name=name or prefix)

    # -- the result ---------------------------------------------------------------------------------------
    def finish(self, inputs, outputs, *, task="classifier", preprocess=None, ignore=None) -> tuple[Graph, dict]:
        """Check the file's tensors against those read, then return ``(graph, params)``.

        Raises
        ------
        ModelFileError
            Missing tensors, unexpected tensors (not matched by ``ignore(name)``) or shape mismatches.
        """
        where = f"path={str(self.path)!r}: " if self.path else ""
        missing = [k for k in self.expected if k not in self.tensors]
        unexpected = [k for k in self.tensors if k not in self.expected and not (ignore and ignore(k))]
        if missing:
            raise ModelFileError(
                f"{where}{len(missing)} tensor(s) missing for {self.describe}: {_listing(missing)}. "
                f"Export the full state_dict of the model, or fix wkbnoise.arch/wkbnoise.config in the metadata.")
        if unexpected:
            raise ModelFileError(
                f"{where}{len(unexpected)} unexpected tensor(s) for {self.describe}: {_listing(unexpected)}. "
                f"The file holds another architecture or config; fix wkbnoise.arch/wkbnoise.config.")
        bad = [f"{k} {list(self.tensors[k].shape)} (expected {list(s)})" for k, s in self.expected.items()
               if tuple(self.tensors[k].shape) != s]
        if bad:
            raise ModelFileError(
                f"{where}shape mismatch for {self.describe}: {_listing(bad)}. The config in the metadata "
                f"does not describe these weights; export them with the config they were trained with.")
        graph = Graph(tuple(self.nodes), tuple(inputs), tuple(outputs), tuple(self.quantized), task, preprocess)
        return graph, dict(self.params)


# ---------------------------------------------------------------------------------------------------------
# the zoo (docs/internals.md): PyTorch module names of wkbnoise/zoo/train_models.py
# ---------------------------------------------------------------------------------------------------------
def _relu(b, x, six=False):
    return b.node("Clip", [x], {"min": 0.0, "max": 6.0}) if six else b.node("Relu", [x])


def _pool2(b, x):
    return b.node("MaxPool", [x], {"kernel_shape": [2, 2], "strides": [2, 2]})


def _lenet5(b, cfg, shape):
    c = shape[0]
    h = _pool2(b, _relu(b, b.conv("images", "conv1", (6, c, 5, 5), pad=2, bias=True)))
    h = _pool2(b, _relu(b, b.conv(h, "conv2", (16, 6, 5, 5), bias=True)))
    h = b.node("Flatten", [h], {"axis": 1})
    h = _relu(b, b.linear(h, "fc1", (120, 400)))
    h = _relu(b, b.linear(h, "fc2", (84, 120)))
    return b.linear(h, "fc3", (cfg["classes"], 84), name="logits")


def _vgg(b, cfg, shape):
    h, c_in, idx, side = "images", shape[0], 0, shape[1]
    for stage in cfg["stages"]:
        for c in stage:
            h = _relu(b, b.conv(h, f"features.{idx}", (c, c_in, 3, 3), pad=1, bn=f"features.{idx + 1}"))
            c_in, idx = c, idx + 3
        h, idx, side = _pool2(b, h), idx + 1, side // 2
    h = b.node("Flatten", [h], {"axis": 1})
    h = _relu(b, b.linear(h, "classifier.0", (cfg["hidden"], c_in * side * side)))
    return b.linear(h, "classifier.3", (cfg["classes"], cfg["hidden"]), name="logits")


def _head(b, h, prefix, shape):
    h = b.node("GlobalAveragePool", [h])
    return b.linear(b.node("Flatten", [h], {"axis": 1}), prefix, shape, name="logits")


def _resnet20(b, cfg, shape):
    widths = cfg["widths"]
    h = _relu(b, b.conv("images", "conv1", (widths[0], shape[0], 3, 3), pad=1, bn="bn1"))
    c_in = widths[0]
    for li, w in enumerate(widths):
        for bi in range(cfg["blocks"]):
            pre, stride = f"layer{li + 1}.{bi}.", (2 if li > 0 and bi == 0 else 1)
            out = _relu(b, b.conv(h, pre + "conv1", (w, c_in, 3, 3), stride=stride, pad=1, bn=pre + "bn1"))
            out = b.conv(out, pre + "conv2", (w, w, 3, 3), pad=1, bn=pre + "bn2")
            short = h
            if stride != 1 or c_in != w:
                short = b.conv(h, pre + "shortcut.0", (w, c_in, 1, 1), stride=stride, bn=pre + "shortcut.1")
            h, c_in = _relu(b, b.node("Add", [out, short])), w
    return _head(b, h, "fc", (cfg["classes"], widths[-1]))


def _mobilenetv2(b, cfg, shape):
    c_in = cfg["stem"]
    h = _relu(b, b.conv("images", "stem.0", (c_in, shape[0], 3, 3), pad=1, bn="stem.1"), six=True)
    i = 0
    for t, c, n, s in cfg["blocks"]:
        for r in range(n):
            pre, stride, hid = f"blocks.{i}.", (s if r == 0 else 1), c_in * t
            out = h
            if t != 1:
                out = _relu(b, b.conv(out, pre + "expand.0", (hid, c_in, 1, 1), bn=pre + "expand.1"), six=True)
            out = _relu(b, b.conv(out, pre + "dw.0", (hid, 1, 3, 3), stride=stride, pad=1, group=hid,
                                  bn=pre + "dw.1"), six=True)
            out = b.conv(out, pre + "project.0", (c, hid, 1, 1), bn=pre + "project.1")
            if stride == 1 and c_in == c:
                out = b.node("Add", [out, h])
            h, c_in, i = out, c, i + 1
    h = _relu(b, b.conv(h, "head.0", (cfg["head"], c_in, 1, 1), bn="head.1"), six=True)
    return _head(b, h, "classifier", (cfg["classes"], cfg["head"]))


def encoder_block(b, t, p: dict, *, dim, heads, mlp, eps, act="none", prenorm=True, mask=None,
                  qkv_bias=True) -> str:
    """One transformer encoder layer over (N, T, D) tokens.

    ``p`` names the tensors: ``q``/``k``/``v`` (or ``qkv``, packed q, k, v rows), ``o``, ``fc1``, ``fc2``
    (Linear prefixes), ``ln1``, ``ln2`` (LayerNorm prefixes). Pre-norm (ViT): ``t + attn(ln1 t)``, then
    ``+ mlp(ln2 .)``; post-norm (BERT): ``ln1(t + attn t)``, then ``ln2(. + mlp .)``.
    """
    h = b.layer_norm(t, p["ln1"], dim, eps) if prenorm else t
    if "qkv" in p:
        qkv = b.linear(h, p["qkv"], (3 * dim, dim))
        q, k, v = (b.node("Slice", [qkv], {"starts": [i * dim], "ends": [(i + 1) * dim], "axes": [-1]})
                   for i in range(3))
    else:
        q, k, v = (b.linear(h, p[n], (dim, dim), bias=qkv_bias) for n in ("q", "k", "v"))
    a = b.node("wkbnoise.Attention", [q, k, v] + ([mask] if mask else []), {"heads": heads})
    a = b.node("Add", [b.linear(a, p["o"], (dim, dim)), t])
    if not prenorm:
        a = b.layer_norm(a, p["ln1"], dim, eps)
    h = b.layer_norm(a, p["ln2"], dim, eps) if prenorm else a
    h = b.node("Gelu", [b.linear(h, p["fc1"], (mlp, dim))], {"approximate": act})
    out = b.node("Add", [b.linear(h, p["fc2"], (dim, mlp)), a])
    return out if prenorm else b.layer_norm(out, p["ln2"], dim, eps)


def patch_tokens(b, x: str, prefix: str, *, channels, dim, patch, cls: str, pos: str, n_tokens: int) -> str:
    """ViT embedding: conv ``prefix`` (kernel = stride = patch) -> tokens, class token prepended, positions added."""
    h = b.conv(x, prefix, (dim, channels, patch, patch), stride=patch, bias=True)
    h = b.node("Transpose", [b.node("Reshape", [h], {"shape": [0, dim, -1]})], {"perm": [0, 2, 1]})
    h = b.node("wkbnoise.PrependToken", [h, b.take(cls, (1, 1, dim))])
    return b.node("Add", [h, b.take(pos, (1, n_tokens + 1, dim))])


def first_token(b, t: str) -> str:
    """(N, T, D) -> (N, D): the class token."""
    return b.node("Squeeze", [b.node("Slice", [t], {"starts": [0], "ends": [1], "axes": [1]})], {"axes": [1]})


def _vit(b, cfg, shape):
    d, p = cfg["dim"], cfg["patch"]
    n = (shape[1] // p) * (shape[2] // p)
    t = patch_tokens(b, "images", "patch_embed", channels=shape[0], dim=d, patch=p, cls="cls_token",
                     pos="pos_embed", n_tokens=n)
    for i in range(cfg["depth"]):
        pre = f"blocks.{i}."
        names = {"ln1": pre + "norm1", "ln2": pre + "norm2", "qkv": pre + "attn.qkv", "o": pre + "attn.proj",
                 "fc1": pre + "mlp.fc1", "fc2": pre + "mlp.fc2"}
        t = encoder_block(b, t, names, dim=d, heads=cfg["heads"], mlp=cfg["mlp"], eps=cfg["eps"])
    cls = b.layer_norm(first_token(b, t), "norm", d, cfg["eps"])
    return b.linear(cls, "head", (cfg["classes"], d), name="logits")


#: zoo architecture name -> (default config, builder(builder, config, input shape [C, H, W]) -> output)
ARCHITECTURES = {
    "lenet5": ({"classes": 10}, _lenet5),
    "vgg": ({"stages": [[32, 32], [64, 64], [128]], "hidden": 128, "classes": 10}, _vgg),
    "resnet20": ({"widths": [16, 32, 64], "blocks": 3, "classes": 10}, _resnet20),
    "mobilenetv2": ({"stem": 16, "blocks": [[1, 16, 1, 1], [4, 24, 2, 2], [4, 32, 2, 2], [4, 64, 2, 1]],
                     "head": 128, "classes": 10}, _mobilenetv2),
    "vit": ({"patch": 7, "dim": 64, "depth": 4, "heads": 4, "mlp": 128, "classes": 10, "eps": 1e-6}, _vit),
}


def build_zoo(arch: str, tensors: dict, config: dict, input_spec: dict, path=None) -> tuple[Graph, dict, dict]:
    """Build a zoo architecture: ``(graph, params, config)`` with the defaults filled in.

    Raises
    ------
    ModelFileError
        Tensors that do not match the architecture, or a config that does not describe it.
    """
    defaults, fn = ARCHITECTURES[arch]
    cfg = {**defaults, **(config or {})}
    describe = f"{arch} with config {json.dumps(cfg, separators=(',', ':'))}"
    b = GraphBuilder(tensors, describe, path)
    b.bn_eps = float(cfg.get("bn_eps", 1e-5))
    shape = [int(s) for s in input_spec["shape"]]
    try:
        out = fn(b, cfg, shape)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        where = f"path={str(path)!r}: " if path else ""
        raise ModelFileError(f"{where}wkbnoise.config={json.dumps(cfg)} does not describe a {arch} "
                             f"({type(exc).__name__}: {exc}). Use the config the weights were trained with.") from None
    inputs = [{"name": "images", "dtype": "float32", "shape": [None, *shape]}]
    graph, params = b.finish(inputs, [out], preprocess=image_preprocess(input_spec["mean"], input_spec["std"]))
    return graph, params, cfg
