"""The ONNX importer against PyTorch: networks exported by ``torch.onnx.export`` and hand-built ONNX graphs
(opset variants, BatchNorm folding, shape arithmetic) give the source's logits within 1e-4 (relative);
unsupported or malformed files are one-line errors with exit code 2."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from reference import rel_err

onnx = pytest.importorskip("onnx")
torch = pytest.importorskip("torch")
import torch_nets as tn  # noqa: E402
from conftest import assert_one_line_error  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from wkbnoise.errors import ModelFileError  # noqa: E402
from wkbnoise.importers.onnx import read_onnx  # noqa: E402
from wkbnoise.runtime.graph import run  # noqa: E402

pytestmark = pytest.mark.torch
# until load_model reads .onnx / .h5 / graph files (the graph room's models.py), the CLI checks cannot run
from wkbnoise.runtime import models as _models  # noqa: E402

needs_loader = pytest.mark.skipif(not hasattr(_models, "model_from_graph"),
                                  reason="load_model does not dispatch to the importers yet")

TOL = 1e-4


def export(module, example, path, opset=17, keep_bn=True):
    """``torch.onnx.export`` (TorchScript exporter) with a free batch dimension, to ``path``."""
    module.eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            buf,
            dynamo=False,
            opset_version=opset,
            training=torch.onnx.TrainingMode.PRESERVE if keep_bn else torch.onnx.TrainingMode.EVAL,
            input_names=["images"],
            output_names=["logits"],
            dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
        )
    path.write_bytes(buf.getvalue())
    return path


def logits(graph, params, x):
    return run(graph, params, {graph.inputs[0]["name"]: np.asarray(x, np.float32)})[graph.outputs[0]]


def torch_logits(module, x):
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


NETS = {
    "resnet": (lambda: tn.ResNet(width=8, classes=10), (3, 48, 48)),
    "mobilenet": (lambda: tn.MobileNet(classes=10), (3, 32, 32)),
    "transformer": (lambda: tn.EncoderBlock(), (3, 16, 16)),
}


@pytest.mark.parametrize("name", sorted(NETS))
def test_exported_network_matches_torch(name, tmp_path):
    make, shape = NETS[name]
    torch.manual_seed(0)
    net = tn.randomize_bn(make())
    path = export(net, torch.randn(2, *shape), tmp_path / f"{name}.onnx")
    graph, params = read_onnx(path)
    x = np.random.default_rng(1).standard_normal((5, *shape)).astype(np.float32)  # another batch size
    ref = torch_logits(net, x)
    err = rel_err(logits(graph, params, x), ref)
    assert err <= TOL, (name, err)
    # nothing of the exporter's shape arithmetic or BatchNorm reaches the runtime
    ops = {n.op for n in graph.nodes}
    assert not ops & {"Shape", "Constant", "Gather", "Concat", "BatchNormalization", "Dropout", "Identity"}
    # the faulty memory: every conv / linear / matmul weight, nothing else
    weighted = {
        n.inputs[1] for n in graph.nodes if n.op in ("Conv", "Gemm", "MatMul") and n.inputs[1] in params
    }
    assert set(graph.quantized) == weighted
    n_layers = sum(isinstance(m, torch.nn.Conv2d | torch.nn.Linear) for m in net.modules())
    assert len(graph.quantized) == n_layers
    assert all(v.dtype == np.float32 for v in params.values())
    # the check has teeth: one quantized weight off by 1 % moves the logits beyond the tolerance
    bad = {**params, graph.quantized[-1]: params[graph.quantized[-1]] * np.float32(1.01)}
    assert rel_err(logits(graph, bad, x), ref) > TOL


def test_resnet_weights_keep_module_names_and_fold_bn(tmp_path):
    torch.manual_seed(0)
    net = tn.randomize_bn(tn.ResNet(width=8, classes=10))
    graph, params = read_onnx(export(net, torch.randn(1, 3, 32, 32), tmp_path / "r.onnx"))
    assert "conv1.weight" in graph.quantized and "fc.weight" in graph.quantized
    assert "layer2.0.downsample.0.weight" in graph.quantized
    # conv1 + bn1 folded: W' = W * gamma / sqrt(var + eps)
    s = (net.bn1.weight / torch.sqrt(net.bn1.running_var + net.bn1.eps)).detach().numpy()
    np.testing.assert_allclose(
        params["conv1.weight"],
        net.conv1.weight.detach().numpy() * s[:, None, None, None],
        rtol=1e-6,
        atol=1e-7,
    )
    # x.view(x.size(0), -1) became a Reshape that copies the batch dimension
    (reshape,) = [n for n in graph.nodes if n.op == "Reshape"]
    assert reshape.attrs["shape"] == [0, -1]


def test_exporter_fused_bn_also_matches(tmp_path):
    """TrainingMode.EVAL makes the exporter fold BatchNorm itself (initializers named onnx::Conv_*)."""
    torch.manual_seed(0)
    net = tn.randomize_bn(tn.ResNet(width=8, classes=10, blocks=(1, 1, 1, 1)))
    graph, params = read_onnx(export(net, torch.randn(1, 3, 32, 32), tmp_path / "r.onnx", keep_bn=False))
    x = np.random.default_rng(2).standard_normal((2, 3, 32, 32)).astype(np.float32)
    assert rel_err(logits(graph, params, x), torch_logits(net, x)) <= TOL


# ---- hand-built graphs ---------------------------------------------------------------------------------
def save_graph(tmp_path, nodes, inits, inputs, outputs, opset, name="g.onnx"):
    g = helper.make_graph(
        nodes, "g", inputs, outputs, [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()]
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    path = tmp_path / name
    path.write_bytes(model.SerializeToString())
    return path


def fvi(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def conv_bn_graph(tmp_path, rng, opset):
    w = rng.standard_normal((6, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    gamma, beta = rng.uniform(0.5, 1.5, 6).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    mean, var = rng.standard_normal(6).astype(np.float32), rng.uniform(0.5, 2, 6).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 0, 0, 2], strides=[2, 1]),
        helper.make_node("BatchNormalization", ["c", "g", "be", "m", "v"], ["y"], name="bn", epsilon=1e-3),
        helper.make_node("Identity", ["y"], ["out"], name="id"),
    ]
    path = save_graph(
        tmp_path,
        nodes,
        {"w": w, "b": b, "g": gamma, "be": beta, "m": mean, "v": var},
        [fvi("x", ["N", 3, 9, 8])],
        [fvi("out", ["N", 6, None, None])],
        opset,
    )
    return path, (w, b, gamma, beta, mean, var)


def test_conv_bn_folding_matches_functional(tmp_path):
    rng = np.random.default_rng(0)
    path, (w, b, gamma, beta, mean, var) = conv_bn_graph(tmp_path, rng, 17)
    graph, params = read_onnx(path)
    assert [n.op for n in graph.nodes] == ["Conv"] and graph.outputs == ("out",)
    x = rng.standard_normal((2, 3, 9, 8)).astype(np.float32)
    F = torch.nn.functional
    ref = F.batch_norm(
        F.conv2d(
            F.pad(torch.from_numpy(x), (0, 2, 1, 0)), torch.from_numpy(w), torch.from_numpy(b), stride=(2, 1)
        ),
        torch.from_numpy(mean),
        torch.from_numpy(var),
        torch.from_numpy(gamma),
        torch.from_numpy(beta),
        eps=1e-3,
    ).numpy()
    assert rel_err(logits(graph, params, x), ref) <= TOL


def test_standalone_batchnorm_stays_a_node(tmp_path):
    rng = np.random.default_rng(0)
    c = 4
    inits = {
        "g": rng.uniform(0.5, 1.5, c),
        "be": rng.standard_normal(c),
        "m": rng.standard_normal(c),
        "v": rng.uniform(0.5, 2, c),
    }
    inits = {k: v.astype(np.float32) for k, v in inits.items()}
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("BatchNormalization", ["r", "g", "be", "m", "v"], ["y"], name="bn"),
    ]
    graph, params = read_onnx(
        save_graph(tmp_path, nodes, inits, [fvi("x", ["N", c, 3, 3])], [fvi("y", None)], 15)
    )
    assert [n.op for n in graph.nodes] == ["Relu", "BatchNormalization"] and graph.quantized == ()
    x = rng.standard_normal((2, c, 3, 3)).astype(np.float32)
    ref = torch.nn.functional.batch_norm(
        torch.relu(torch.from_numpy(x)),
        *(torch.from_numpy(inits[k]) for k in ("m", "v", "g", "be")),
        eps=1e-5,
    ).numpy()
    assert rel_err(logits(graph, params, x), ref) <= TOL


def shape_chain(opset):
    """Clip -> Unsqueeze -> Squeeze -> Reshape(Concat(Gather(Shape(x), 0), [-1])) -> MatMul, in the
    input/attribute forms of ``opset``."""
    i64 = np.int64
    nodes, inits = [], {"wm": np.random.default_rng(3).standard_normal((24, 5)).astype(np.float32)}
    if opset >= 11:
        inits |= {"lo": np.float32(-0.5), "hi": np.float32(0.7)}
        nodes.append(helper.make_node("Clip", ["x", "lo", "hi"], ["c"], name="clip"))
    else:
        nodes.append(helper.make_node("Clip", ["x"], ["c"], name="clip", min=-0.5, max=0.7))
    if opset >= 13:
        inits |= {"ax": np.array([1], i64)}
        nodes += [
            helper.make_node("Unsqueeze", ["c", "ax"], ["u"], name="unsq"),
            helper.make_node("Squeeze", ["u", "ax"], ["s"], name="sq"),
        ]
    else:
        nodes += [
            helper.make_node("Unsqueeze", ["c"], ["u"], name="unsq", axes=[1]),
            helper.make_node("Squeeze", ["u"], ["s"], name="sq", axes=[1]),
        ]
    zero = helper.make_tensor("zero", TensorProto.INT64, [], [0])
    minus1 = helper.make_tensor("m1", TensorProto.INT64, [1], [-1])
    nodes += [
        helper.make_node("Shape", ["s"], ["shp"], name="shape"),
        helper.make_node("Constant", [], ["i0"], name="const0", value=zero),
        helper.make_node("Gather", ["shp", "i0"], ["n"], name="gather", axis=0),
        helper.make_node("Constant", [], ["m1"], name="constm1", value=minus1),
    ]
    if opset >= 13:
        nodes.append(helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"], name="unsq_n"))
        inits["ax0"] = np.array([0], i64)
    else:
        nodes.append(helper.make_node("Unsqueeze", ["n"], ["n1"], name="unsq_n", axes=[0]))
    nodes += [
        helper.make_node("Concat", ["n1", "m1"], ["tgt"], name="concat", axis=0),
        helper.make_node("Reshape", ["s", "tgt"], ["flat"], name="reshape"),
        helper.make_node("Dropout", ["flat"], ["d"], name="drop"),
        helper.make_node("MatMul", ["d", "wm"], ["y"], name="mm"),
    ]
    return nodes, inits


@pytest.mark.parametrize("opset", [9, 11, 13, 17])
def test_opset_forms_and_shape_folding(opset, tmp_path):
    nodes, inits = shape_chain(opset)
    path = save_graph(tmp_path, nodes, inits, [fvi("x", ["N", 2, 3, 4])], [fvi("y", ["N", 5])], opset)
    graph, params = read_onnx(path)
    ops = [n.op for n in graph.nodes]
    assert ops == ["Clip", "Unsqueeze", "Squeeze", "Reshape", "MatMul"], ops
    clip = graph.nodes[0]
    assert clip.attrs == {"min": -0.5, "max": pytest.approx(0.7)}
    assert graph.nodes[1].attrs["axes"] == [1] and graph.nodes[3].attrs["shape"] == [0, -1]
    assert graph.quantized == ("wm",)
    x = np.random.default_rng(4).standard_normal((3, 2, 3, 4)).astype(np.float32)
    ref = np.clip(x, -0.5, 0.7).reshape(3, -1) @ inits["wm"]
    assert rel_err(logits(graph, params, x), ref) <= TOL


def test_softmax_before_opset13_coerces_to_2d(tmp_path):
    nodes = [helper.make_node("Softmax", ["x"], ["y"], name="sm", axis=1)]
    x = np.random.default_rng(5).standard_normal((2, 7)).astype(np.float32)
    graph, params = read_onnx(save_graph(tmp_path, nodes, {}, [fvi("x", ["N", 7])], [fvi("y", None)], 11))
    ref = torch.softmax(torch.from_numpy(x), 1).numpy()
    assert rel_err(logits(graph, params, x), ref) <= TOL
    nodes = [helper.make_node("Softmax", ["x"], ["y"], name="sm", axis=1)]
    with pytest.raises(ModelFileError, match="node 'sm' \\(op 'Softmax'\\).*flattened"):
        read_onnx(save_graph(tmp_path, nodes, {}, [fvi("x", ["N", 3, 7])], [fvi("y", None)], 11))


def test_embedding_gather_is_quantized_and_split_becomes_slices(tmp_path):
    rng = np.random.default_rng(6)
    table = rng.standard_normal((11, 6)).astype(np.float32)
    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["e"], name="embed", axis=0),
        helper.make_node("Split", ["e", "sizes"], ["a", "b"], name="split", axis=-1),
        helper.make_node("Mul", ["a", "b"], ["y"], name="mul"),
    ]
    inits = {"table": table, "sizes": np.array([3, 3], np.int64)}
    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, ["N", 4])
    graph, params = read_onnx(save_graph(tmp_path, nodes, inits, [ids], [fvi("y", None)], 17))
    assert graph.quantized == ("table",) and "sizes" not in params
    assert [n.op for n in graph.nodes] == ["Gather", "Slice", "Slice", "Mul"]
    x = rng.integers(0, 11, (2, 4))
    e = table[x]
    assert rel_err(run(graph, params, {"ids": x})["y"], e[..., :3] * e[..., 3:]) <= TOL


# ---- errors: one line, exit 2 ---------------------------------------------------------------------------
@needs_loader
def test_unsupported_op_is_one_line_via_cli(tmp_path, cli):
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("Einsum", ["r", "r"], ["y"], name="the_einsum", equation="ij,ij->ij"),
    ]
    path = save_graph(tmp_path, nodes, {}, [fvi("x", ["N", 4])], [fvi("y", None)], 17, "einsum.onnx")
    with pytest.raises(
        ModelFileError,
        match="node 'the_einsum' \\(op 'Einsum'\\) in .*einsum.onnx: op Einsum is not supported",
    ):
        read_onnx(path)
    assert_one_line_error(cli("info", str(path)), "the_einsum", "Einsum", "einsum.onnx")


def test_custom_domain_op_is_refused(tmp_path):
    nodes = [helper.make_node("FusedConv", ["x"], ["y"], name="fc", domain="com.microsoft")]
    g = helper.make_graph(nodes, "g", [fvi("x", [1, 2])], [fvi("y", None)])
    model = helper.make_model(
        g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    path = tmp_path / "ms.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ModelFileError, match="com.microsoft.FusedConv"):
        read_onnx(path)


@needs_loader
def test_malformed_files_are_one_line_via_cli(tmp_path, cli):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07this is not a protobuf\xff\xff\xff")
    assert_one_line_error(cli("info", str(garbage)), "garbage.onnx")
    nodes = [helper.make_node("Relu", ["nowhere"], ["y"], name="dangling")]
    path = save_graph(tmp_path, nodes, {}, [fvi("x", ["N", 4])], [fvi("y", None)], 17, "dangling.onnx")
    with pytest.raises(ModelFileError, match="dangling"):
        read_onnx(path)
    assert_one_line_error(cli("info", str(path)), "dangling", "nowhere")


def test_runtime_reshape_target_is_refused(tmp_path):
    """A Reshape whose target is computed from data (not from shapes) cannot be folded."""
    nodes = [
        helper.make_node("Cast", ["t"], ["ti"], name="cast", to=TensorProto.INT64),
        helper.make_node("Reshape", ["x", "ti"], ["y"], name="reshape"),
    ]
    path = save_graph(tmp_path, nodes, {}, [fvi("x", ["N", 4]), fvi("t", [2])], [fvi("y", None)], 17)
    with pytest.raises(ModelFileError, match="node 'cast' \\(op 'Cast'\\)"):
        read_onnx(path)


# ---- real size -------------------------------------------------------------------------------------------
@pytest.mark.slow
@needs_loader
def test_resnet18_imagenet_size_matches_and_evaluates(tmp_path, cli):
    """torchvision's ResNet-18 topology at 224 x 224 with 1000 classes (random weights, BN statistics
    randomized): the imported graph matches torch, and `eval` runs on the .onnx file (agreement metric)."""
    from safetensors.numpy import save_file

    torch.manual_seed(0)
    net = tn.randomize_bn(tn.ResNet(width=64, classes=1000))
    path = export(net, torch.randn(1, 3, 224, 224), tmp_path / "resnet18.onnx")
    graph, params = read_onnx(path)
    assert len(graph.quantized) == 21 and sum(params[q].size for q in graph.quantized) == 11_678_912
    x = np.random.default_rng(0).standard_normal((8, 3, 224, 224)).astype(np.float32)
    err = rel_err(logits(graph, params, x[:2]), torch_logits(net, x[:2]))
    assert err <= TOL, err
    save_file({"images": x}, str(tmp_path / "X.safetensors"))
    res = cli(
        "eval", str(path), "--inputs", str(tmp_path / "X.safetensors"), "--trials", "2", "--images", "8"
    )
    assert res.returncode == 0, res.stderr
    assert "agreement" in res.stdout
