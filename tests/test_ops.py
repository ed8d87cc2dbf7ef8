"""Each graph operator, run through the executor, against torch.nn.functional; and the graph's checks.

Every op is run as a one-node graph whose inputs and initializers are read-only (an op that wrote into
them would fail). Image ops also run behind an exact 1x1 identity convolution, so that they read the
executor's channel-major activations (``via_cn``).
"""

from __future__ import annotations

import numpy as np
import pytest
from reference import rel_err

from wkbnoise import InputError, ModelFileError
from wkbnoise.runtime.graph import Graph, Node, run
from wkbnoise.runtime.ops import OPS

RTOL = 1e-5


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def F(torch):
    return torch.nn.functional


def rand(*shape, seed=0, scale=1.0):
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


def ro(a):
    a = np.array(a)
    a.setflags(write=False)
    return a


def run_op(op, feeds, attrs=None, params=None, *, via_cn=False, n_out=1):
    """Run one ``op`` node; ``feeds`` and ``params`` map input names (in op order) to arrays."""
    feeds, params = dict(feeds), dict(params or {})
    names = list(feeds) + list(params)
    nodes = []
    if via_cn:
        for name, a in list(feeds.items()):
            if a.ndim == 4:
                eye = ro(np.eye(a.shape[1], dtype=np.float32)[:, :, None, None])
                params[f"{name}.eye"] = eye
                nodes.append(Node("Conv", f"{name}.id", (name, f"{name}.eye"), (f"{name}.cn",)))
                names[names.index(name)] = f"{name}.cn"
    order = [n for n in names]
    outs = tuple(f"y{i}" for i in range(n_out))
    nodes.append(Node(op, "the_node", tuple(order), outs, dict(attrs or {})))
    g = Graph(tuple(nodes), tuple({"name": k, "dtype": str(v.dtype), "shape": [None, *v.shape[1:]]}
                                  for k, v in feeds.items()), outs)
    g.check_structure()
    g.validate(params)
    res = run(g, {k: ro(v) for k, v in params.items()}, {k: ro(v) for k, v in feeds.items()})
    return res["y0"] if n_out == 1 else [res[o] for o in outs]


def t(a):
    import torch

    return torch.from_numpy(np.array(a))


def close(got, ref, tol=RTOL):
    ref = ref.numpy() if hasattr(ref, "numpy") else np.asarray(ref)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    assert rel_err(got, ref) < tol, rel_err(got, ref)


# ------------------------------------------------------------------------------------------- convolution
@pytest.mark.torch
@pytest.mark.parametrize("via_cn", [False, True])
@pytest.mark.parametrize("cin,cout,k,stride,pads,dil,group", [
    (3, 8, 3, 1, [1, 1, 1, 1], 1, 1), (4, 6, 3, 2, [0, 0, 0, 0], 1, 2), (6, 6, 3, 2, [1, 1, 1, 1], 1, 6),
    (6, 12, 3, 1, [1, 1, 1, 1], 1, 6), (3, 5, 3, 1, [2, 2, 2, 2], 2, 1), (3, 5, 5, 1, [0, 1, 2, 1], 1, 1),
    (2, 4, 1, 2, [0, 0, 0, 0], 1, 1), (4, 4, 3, 1, [1, 0, 1, 0], 3, 2)])
def test_conv(F, via_cn, cin, cout, k, stride, pads, dil, group):
    x, w, b = rand(2, cin, 11, 10), rand(cout, cin // group, k, k, seed=1), rand(cout, seed=2)
    got = run_op("Conv", {"x": x}, {"strides": [stride, stride], "pads": pads, "dilations": [dil, dil],
                                     "group": group}, {"w": w, "b": b}, via_cn=via_cn)
    xp = F.pad(t(x), (pads[1], pads[3], pads[0], pads[2]))
    close(got, F.conv2d(xp, t(w), t(b), stride=stride, dilation=dil, groups=group))


@pytest.mark.torch
def test_conv_same_padding_no_bias_and_1d(F):
    x, w = rand(2, 3, 9, 9), rand(4, 3, 3, 3, seed=1)
    close(run_op("Conv", {"x": x}, {"auto_pad": "SAME_UPPER"}, {"w": w}), F.conv2d(t(x), t(w), padding="same"))
    x1, w1 = rand(2, 3, 12), rand(5, 3, 3, seed=1)
    close(run_op("Conv", {"x": x1}, {"strides": [2], "pads": [1, 1]}, {"w": w1}),
          F.conv1d(t(x1), t(w1), stride=2, padding=1))


def test_conv_rejects_wrong_channels():
    with pytest.raises(InputError, match=r"node 'the_node' \(op 'Conv'\): input has 3 channels"):
        run_op("Conv", {"x": rand(1, 3, 5, 5)}, {}, {"w": rand(2, 4, 3, 3)})


# ------------------------------------------------------------------------------------------- matrix products
@pytest.mark.torch
def test_gemm_and_matmul(F, torch):
    x, w, b = rand(5, 7), rand(3, 7, seed=1), rand(3, seed=2)
    close(run_op("Gemm", {"x": x}, {"transB": 1}, {"w": w, "b": b}), F.linear(t(x), t(w), t(b)))
    x3 = rand(2, 4, 7)
    close(run_op("Gemm", {"x": x3}, {"transB": 1}, {"w": w, "b": b}), F.linear(t(x3), t(w), t(b)))
    a, bb, c = rand(7, 5), rand(7, 4, seed=4), rand(4, seed=3)
    close(run_op("Gemm", {"a": a}, {"transA": 1, "alpha": 0.5, "beta": 2.0}, {"b": bb, "c": c}),
          0.5 * t(a).T @ t(bb) + 2.0 * t(c))
    m = rand(7, 3, seed=5)
    close(run_op("MatMul", {"x": x3}, {}, {"m": m}), t(x3) @ t(m))
    q, k = rand(2, 3, 4, 5), rand(2, 3, 5, 6, seed=1)
    close(run_op("MatMul", {"q": q, "k": k}), torch.matmul(t(q), t(k)))


# ------------------------------------------------------------------------------------------- elementwise
UNARY = {
    "Relu": lambda F, x: F.relu(x), "Sigmoid": lambda F, x: F.sigmoid(x), "Tanh": lambda F, x: F.tanh(x),
    "HardSwish": lambda F, x: F.hardswish(x), "Erf": lambda F, x: x.erf(), "Gelu": lambda F, x: F.gelu(x),
    "Sqrt": lambda F, x: x.abs().sqrt(), "Exp": lambda F, x: x.exp(), "Neg": lambda F, x: -x,
    "Identity": lambda F, x: x, "Dropout": lambda F, x: x,
}


@pytest.mark.torch
@pytest.mark.parametrize("via_cn", [False, True])
@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary(F, op, via_cn):
    x = rand(2, 3, 5, 4, scale=2.0)
    if op == "Sqrt":
        x = np.abs(x)
    close(run_op(op, {"x": x}, via_cn=via_cn), UNARY[op](F, t(x)))


@pytest.mark.torch
@pytest.mark.parametrize("via_cn", [False, True])
def test_parametrised_activations(F, torch, via_cn):
    x = rand(2, 3, 5, 4, scale=4.0)
    close(run_op("Clip", {"x": x}, {"min": 0.0, "max": 6.0}, via_cn=via_cn), F.relu6(t(x)))
    close(run_op("Clip", {"x": x}, {"min": -1.0}, via_cn=via_cn), torch.clamp(t(x), min=-1.0))
    close(run_op("HardSigmoid", {"x": x}, via_cn=via_cn), torch.clamp(0.2 * t(x) + 0.5, 0, 1))
    close(run_op("HardSigmoid", {"x": x}, {"alpha": 1 / 6, "beta": 0.5}, via_cn=via_cn), F.hardsigmoid(t(x)))
    close(run_op("Gelu", {"x": x}, {"approximate": "tanh"}, via_cn=via_cn), F.gelu(t(x), approximate="tanh"))
    close(run_op("LeakyRelu", {"x": x}, {"alpha": 0.1}, via_cn=via_cn), F.leaky_relu(t(x), 0.1))


@pytest.mark.torch
@pytest.mark.parametrize("via_cn", [False, True])
@pytest.mark.parametrize("op,fn", [("Add", "add"), ("Sub", "sub"), ("Mul", "mul"), ("Div", "div"),
                                   ("Pow", "pow")])
def test_binary_with_broadcasting(torch, op, fn, via_cn):
    x = np.abs(rand(2, 3, 4, 5)) + 0.5
    for other in (rand(3, 1, 1, seed=1), rand(2, 3, 4, 5, seed=2), rand(5, seed=3), rand(1, 3, 1, 1, seed=4)):
        y = np.abs(other) + 0.5 if op in ("Div", "Pow") else other
        close(run_op(op, {"x": x}, {}, {"y": y}, via_cn=via_cn), getattr(torch, fn)(t(x), t(y)))
    close(run_op(op, {"a": x, "b": x + 1}, via_cn=via_cn), getattr(torch, fn)(t(x), t(x + 1)))


# ------------------------------------------------------------------------------------------- normalization
@pytest.mark.torch
@pytest.mark.parametrize("via_cn", [False, True])
def test_batch_norm(F, via_cn):
    x = rand(2, 4, 3, 3)
    g, b, m, v = rand(4, seed=1), rand(4, seed=2), rand(4, seed=3), np.abs(rand(4, seed=4)) + 0.1
    close(run_op("BatchNormalization", {"x": x}, {"epsilon": 1e-3}, {"g": g, "b": b, "m": m, "v": v},
                 via_cn=via_cn),
          F.batch_norm(t(x), t(m), t(v), t(g), t(b), training=False, eps=1e-3))


@pytest.mark.torch
def test_layer_norm_softmax(F):
    x, g, b = rand(2, 5, 8), rand(8, seed=1), rand(8, seed=2)
    close(run_op("LayerNormalization", {"x": x}, {"epsilon": 1e-6}, {"g": g, "b": b}),
          F.layer_norm(t(x), (8,), t(g), t(b), eps=1e-6))
    g2 = rand(5, 8, seed=3)
    close(run_op("LayerNormalization", {"x": x}, {"axis": 1}, {"g": g2}),
          F.layer_norm(t(x), (5, 8), t(g2), None, eps=1e-5))
    close(run_op("Softmax", {"x": x}, {"axis": 1}), F.softmax(t(x), dim=1))
    close(run_op("Softmax", {"x": x}), F.softmax(t(x), dim=-1))
    close(run_op("LogSoftmax", {"x": x}), F.log_softmax(t(x), dim=-1))


# ------------------------------------------------------------------------------------------- pooling
@pytest.mark.torch
@pytest.mark.parametrize("via_cn", [False, True])
@pytest.mark.parametrize("k,s,p,ceil", [(2, 2, 0, 0), (3, 2, 1, 0), (3, 2, 1, 1), (3, 2, 0, 1), (2, 1, 0, 0)])
def test_pools(F, via_cn, k, s, p, ceil):
    x = rand(2, 3, 9, 10)
    attrs = {"kernel_shape": [k, k], "strides": [s, s], "pads": [p] * 4, "ceil_mode": ceil}
    close(run_op("MaxPool", {"x": x}, attrs, via_cn=via_cn), F.max_pool2d(t(x), k, s, p, ceil_mode=bool(ceil)))
    for include in (0, 1):
        close(run_op("AveragePool", {"x": x}, {**attrs, "count_include_pad": include}, via_cn=via_cn),
              F.avg_pool2d(t(x), k, s, p, ceil_mode=bool(ceil), count_include_pad=bool(include)))
    close(run_op("GlobalAveragePool", {"x": x}, via_cn=via_cn), F.adaptive_avg_pool2d(t(x), 1))


# ------------------------------------------------------------------------------------------- shapes
@pytest.mark.torch
def test_shape_ops(torch):
    x = rand(2, 3, 4, 5)
    close(run_op("Flatten", {"x": x}), t(x).reshape(2, -1))
    close(run_op("Flatten", {"x": x}, {"axis": 2}), t(x).reshape(6, -1))
    close(run_op("Reshape", {"x": x}, {"shape": [0, -1, 5]}), t(x).reshape(2, 12, 5))
    close(run_op("Transpose", {"x": x}, {"perm": [0, 2, 3, 1]}), t(x).permute(0, 2, 3, 1))
    close(run_op("Squeeze", {"x": x[:, :1]}, {"axes": [1]}), t(x[:, :1]).squeeze(1))
    close(run_op("Unsqueeze", {"x": x}, {"axes": [1, -1]}), t(x).unsqueeze(1).unsqueeze(-1))
    close(run_op("Slice", {"x": x}, {"starts": [1, -1], "ends": [3, -5], "axes": [1, 3], "steps": [1, -2]}),
          t(x)[:, 1:3].flip(3)[..., 0:4:2])
    close(run_op("Expand", {"x": x[:, :1]}, {"shape": [1, 3, 1, 1]}), t(x[:, :1]).expand(2, 3, 4, 5))
    close(run_op("Tile", {"x": x}, {"repeats": [1, 2, 1, 1]}), t(x).repeat(1, 2, 1, 1))
    a, b = run_op("Split", {"x": x}, {"axis": 1, "split": [1, 2]}, n_out=2)
    close(a, t(x)[:, :1])
    close(b, t(x)[:, 1:])
    close(run_op("ReduceMean", {"x": x}, {"axes": [2, 3], "keepdims": 0}), t(x).mean(dim=(2, 3)))
    close(run_op("ReduceMean", {"x": x}, {"axes": [-1]}), t(x).mean(dim=-1, keepdim=True))


@pytest.mark.torch
@pytest.mark.parametrize("via_cn", [False, True])
def test_concat(torch, via_cn):
    a, b = rand(2, 3, 4, 5), rand(2, 2, 4, 5, seed=1)
    close(run_op("Concat", {"a": a, "b": b}, {"axis": 1}, via_cn=via_cn), torch.cat([t(a), t(b)], 1))
    close(run_op("Concat", {"a": a, "b": a}, {"axis": -1}, via_cn=via_cn), torch.cat([t(a), t(a)], -1))


@pytest.mark.torch
def test_pad(F):
    x = rand(2, 3, 4, 5)
    pads = [0, 0, 1, 2, 0, 0, 3, 1]
    close(run_op("Pad", {"x": x}, {"pads": pads, "value": 0.5}), F.pad(t(x), (2, 1, 1, 3), value=0.5))
    close(run_op("Pad", {"x": x}, {"pads": pads, "mode": "reflect"}), F.pad(t(x), (2, 1, 1, 3), mode="reflect"))
    close(run_op("Pad", {"x": x}, {"pads": pads, "mode": "edge"}), F.pad(t(x), (2, 1, 1, 3), mode="replicate"))


@pytest.mark.torch
def test_gather_as_embedding(F, torch):
    table, ids = rand(10, 4), np.array([[1, 9, 0], [3, 3, 2]], np.int64)
    close(run_op("Gather", {}, {}, {"table": table, "ids": ids}), F.embedding(t(ids), t(table)))
    close(run_op("Gather", {"x": rand(2, 5, 3)}, {"axis": 1}, {"i": np.array([4, -1], np.int64)}),
          torch.index_select(t(rand(2, 5, 3)), 1, t(np.array([4, 4]))))
    with pytest.raises(InputError, match=r"\(op 'Gather'\).*\[1, 10\].*vocabulary size 10"):
        run_op("Gather", {}, {}, {"table": table, "ids": np.array([[1, 10]], np.int64)})


# ------------------------------------------------------------------------------------------- wkbnoise ops
@pytest.mark.torch
def test_attention_matches_sdpa(F, torch):
    N, T, D, H = 2, 5, 12, 3
    q, k, v = rand(N, T, D), rand(N, T, D, seed=1), rand(N, T, D, seed=2)
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], np.int64)

    def heads(a):
        return t(a).reshape(N, T, H, D // H).transpose(1, 2)

    ref = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), attn_mask=t(mask[:, None, None, :] == 1))
    got = run_op("wkbnoise.Attention", {"q": q, "k": k, "v": v, "mask": mask}, {"heads": H})
    close(got, ref.transpose(1, 2).reshape(N, T, D))
    no_mask = F.scaled_dot_product_attention(heads(q), heads(k), heads(v)).transpose(1, 2).reshape(N, T, D)
    close(run_op("wkbnoise.Attention", {"q": q, "k": k, "v": v}, {"heads": H}), no_mask)
    assert rel_err(got, no_mask.numpy()) > 1e-2  # the mask matters


def test_token_ops():
    x, tok = rand(2, 3, 4), rand(1, 1, 4, seed=1)
    y = run_op("wkbnoise.PrependToken", {"x": x}, {}, {"tok": tok})
    np.testing.assert_array_equal(y[:, 0], np.broadcast_to(tok[0], (2, 4)))
    np.testing.assert_array_equal(y[:, 1:], x)
    ids = np.zeros((2, 6), np.int64)
    np.testing.assert_array_equal(run_op("wkbnoise.PositionIds", {"ids": ids}), [np.arange(6)])
    mask = np.array([[1, 1, 0], [1, 0, 0]], np.int64)
    got = run_op("wkbnoise.MaskedMean", {"h": x, "m": mask})
    np.testing.assert_allclose(got, np.stack([x[0, :2].mean(0), x[1, 0]]), rtol=1e-6)


# ------------------------------------------------------------------------------------------- the walk
def test_in_place_ops_leave_shared_values_intact():
    """A residual: the ReLU that follows the conv may not overwrite the block input the Add reads later."""
    rng = np.random.default_rng(0)
    w1, w2 = ro(rng.standard_normal((3, 3, 3, 3)).astype(np.float32)), ro(rng.standard_normal((3, 3, 1, 1)).astype(
        np.float32))
    nodes = (Node("Conv", "c0", ("x", "w2"), ("h",)), Node("Relu", "r0", ("h",), ("hr",)),
             Node("Conv", "c1", ("hr", "w1"), ("a",), {"pads": [1, 1, 1, 1]}), Node("Relu", "r1", ("a",), ("ar",)),
             Node("Add", "add", ("ar", "hr"), ("s",)), Node("Relu", "r2", ("s",), ("y",)),
             Node("Flatten", "f", ("hr",), ("hf",)), Node("Relu", "r3", ("hf",), ("z",)))
    g = Graph(nodes, ({"name": "x", "dtype": "float32", "shape": [None, 3, 6, 6]},), ("y", "z", "hr"))
    x = ro(rng.standard_normal((2, 3, 6, 6)).astype(np.float32))
    out = run(g, {"w1": w1, "w2": w2}, {"x": x})

    def nchw(op, *a, **k):
        return OPS[op](list(a), k, _ctx(op))[0]

    hr = np.maximum(nchw("Conv", x, w2), 0)
    ar = np.maximum(nchw("Conv", hr, w1, pads=[1, 1, 1, 1]), 0)
    np.testing.assert_array_equal(out["y"], np.maximum(ar + hr, 0))
    np.testing.assert_array_equal(out["hr"], hr)
    np.testing.assert_array_equal(out["z"], hr.reshape(2, -1))
    owned = {s.node.name: s.owned for s in g.plan}
    assert owned["r1"] == (True,) and owned["add"] == (True, False) and owned["r0"] == (True,)
    assert owned["r3"] == (False,)  # a view of hr, which is a graph output


def _ctx(op):
    from wkbnoise.runtime.ops import Context

    ctx = Context()
    ctx.node = Node(op, "ref", (), ("y",))
    return ctx


# ------------------------------------------------------------------------------------------- malformed graphs
def _graph(nodes, outputs=("y",)):
    return {"format": "wkbnoise.graph/1", "task": "classifier",
            "inputs": [{"name": "x", "dtype": "float32", "shape": [None, 4]}], "outputs": list(outputs),
            "nodes": nodes, "quantized": ["w"]}


def _n(op, name, inputs, outputs, attrs=None):
    return {"op": op, "name": name, "inputs": inputs, "outputs": outputs, "attrs": attrs or {}}


MALFORMED = {
    "unknown op": (_graph([_n("FancyConv", "f1", ["x"], ["y"])]), ["'f1'", "FancyConv", "not supported", "Relu"]),
    "dangling": (_graph([_n("Relu", "r1", ["nowhere"], ["y"])]), ["'r1'", "'Relu'", "'nowhere'", "dangling"]),
    "missing initializer": (_graph([_n("Gemm", "fc", ["x", "fc.weight"], ["y"], {"transB": 1})]),
                            ["'fc'", "'Gemm'", "fc.weight", "missing initializer"]),
    "cycle": (_graph([_n("Add", "a1", ["x", "b"], ["a"]), _n("Relu", "r1", ["a"], ["b"]),
                      _n("Identity", "i", ["b"], ["y"])]), ["cycle", "(op '"]),
    "bad attr kind": (_graph([_n("Gemm", "fc", ["x", "w"], ["y"], {"transB": "yes"})]),
                      ["'fc'", "'Gemm'", "transB='yes'", "int"]),
    "unknown attr": (_graph([_n("Relu", "r", ["x"], ["y"], {"slope": 0.1})]), ["'r'", "'slope'", "not one of"]),
    "bad perm": (_graph([_n("Transpose", "tr", ["x"], ["y"], {"perm": [0, 0]})]), ["'tr'", "not a permutation"]),
    "negative stride": (_graph([_n("Conv", "c", ["x", "w"], ["y"], {"strides": [0, 1]})]),
                        ["'c'", "strides=[0, 1]", "positive"]),
    "missing attr": (_graph([_n("Reshape", "rs", ["x"], ["y"])]), ["'rs'", "'shape' is required"]),
    "arity": (_graph([_n("Add", "ad", ["x"], ["y"])]), ["'ad'", "1 inputs", "Add takes 2"]),
    "written twice": (_graph([_n("Relu", "r1", ["x"], ["y"]), _n("Relu", "r2", ["x"], ["y"])]),
                      ["'r2'", "written twice"]),
    "no output": (_graph([_n("Relu", "r1", ["x"], ["z"])]), ["returns 'y'"]),
    "quantized not a tensor": (_graph([_n("Relu", "r1", ["x"], ["y"])]), ["'w'", "faulty memory"]),
}


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_malformed_graphs_are_one_line_model_file_errors(kind):
    d, fragments = MALFORMED[kind]
    params = {"w": np.zeros((4, 4), np.float32)} if kind != "quantized not a tensor" else {}
    with pytest.raises(ModelFileError) as exc:
        Graph.from_json(d, path="m.safetensors").validate(params, path="m.safetensors")
    msg = str(exc.value)
    assert "\n" not in msg and "m.safetensors" in msg
    for frag in fragments:
        assert frag in msg, (frag, msg)


def test_json_round_trip_and_topological_order():
    d = _graph([_n("Relu", "r2", ["a"], ["y"]), _n("Neg", "r1", ["x"], ["a"])])
    g = Graph.from_json(d)
    assert Graph.from_json(g.to_json()).to_dict() == g.to_dict()
    x = ro(np.array([[-1, 2, -3, 4]], np.float32))
    np.testing.assert_array_equal(run(g, {}, {"x": x})["y"], [[1, 0, 3, 0]])
    with pytest.raises(ModelFileError, match="not JSON"):
        Graph.from_json("{nope")
    with pytest.raises(ModelFileError, match="format"):
        Graph.from_json({**d, "format": "other/2"})
