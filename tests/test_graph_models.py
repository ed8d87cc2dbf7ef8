"""Models as graphs: the zoo through the graph path, converted files, malformed graph files, the walk's layout."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_one_line_error
from safetensors.numpy import save_file

from wkbnoise import ModelFileError, load_model, zoo
from wkbnoise.runtime import graph as graph_module
from wkbnoise.runtime import read_safetensors, save_model


@pytest.fixture(scope="module")
def images():
    return np.ascontiguousarray(zoo.test_set()[0][:48])


@pytest.mark.parametrize("name", zoo.names())
def test_converted_zoo_file_gives_bit_identical_logits(name, images, tmp_path):
    model = zoo.load(name)
    out = save_model(model, tmp_path / f"{name}.safetensors")
    f = read_safetensors(out)
    assert json.loads(f.metadata["wkbnoise.graph"])["format"] == "wkbnoise.graph/1"
    assert "bn1.running_mean" not in f.tensors  # BatchNorm folded: the file holds the graph's weights
    again = load_model(out)
    assert again.arch == model.arch and again.config == model.config and again.input_spec == model.input_spec
    assert [(q.name, q.kind, q.weight.shape) for q in again.layers] == [
        (q.name, q.kind, q.weight.shape) for q in model.layers]
    x = model.preprocess(images)
    np.testing.assert_array_equal(again(x), model(x))
    w = {model.layers[1].name: model.layers[1].weight * np.float32(0.9)}
    np.testing.assert_array_equal(again(again.prepare(x), w), model(x, weights=w))
    assert not np.array_equal(again(x, w), model(x))


def test_cli_convert_then_info(cli, tmp_path):
    out = tmp_path / "lenet.safetensors"
    r = cli("convert", str(zoo.path("lenet5")), str(out), "--json")
    assert r.returncode == 0, r.stderr
    d = r.json()
    assert d["arch"] == "lenet5" and d["quantized_layers"] == 5 and d["nodes"] == 12
    info = cli("info", str(out), "--json")
    assert info.returncode == 0, info.stderr
    assert info.json()["float_accuracy"] == cli("info", str(zoo.path("lenet5")), "--json").json()["float_accuracy"]
    assert_one_line_error(cli("convert", str(zoo.path("lenet5")), str(tmp_path / "x.onnx")), "must end in .safetensors")


# ------------------------------------------------------------------------------------------- malformed files
def _graph_file(tmp_path, mutate):
    """lenet5 converted, its graph JSON changed by ``mutate(dict)`` (tensors by ``mutate`` too)."""
    model = zoo.load("lenet5")
    d = model.graph.to_dict()
    tensors = {k: np.array(v) for k, v in model.params.items()}
    mutate(d, tensors)
    p = tmp_path / "bad.safetensors"
    save_file(tensors, str(p), metadata={"format": "pt", "wkbnoise.graph": json.dumps(d)})
    return p


def _node(d, name):
    return next(n for n in d["nodes"] if n["name"] == name)


BAD_GRAPHS = {
    "unknown op": (lambda d, t: _node(d, "conv2").update(op="DeformConv"),
                   ["node 'conv2'", "DeformConv", "not supported by the runtime"]),
    "dangling": (lambda d, t: _node(d, "fc2").update(inputs=["nowhere", "fc2.weight", "fc2.bias"]),
                 ["node 'fc2'", "'Gemm'", "'nowhere'"]),
    "missing initializer": (lambda d, t: t.pop("fc1.bias"), ["node 'fc1'", "'fc1.bias'", "missing initializer"]),
    "bad attrs": (lambda d, t: _node(d, "conv1")["attrs"].update(group="one"), ["node 'conv1'", "group='one'"]),
    "cycle": (lambda d, t: _node(d, "conv1").update(inputs=["logits", "conv1.weight", "conv1.bias"]),
              ["cycle", "(op '"]),
    "shapes do not chain": (lambda d, t: t.update({"fc2.weight": np.zeros((84, 121), np.float32)}),
                            ["node 'fc2'", "(op 'Gemm')", "120 features", "121"]),
    "not json": (lambda d, t: d.update(nodes="[{"), ["'nodes'"]),
}


@pytest.mark.parametrize("kind", sorted(BAD_GRAPHS))
def test_malformed_graph_file_is_one_model_file_error(tmp_path, kind):
    mutate, fragments = BAD_GRAPHS[kind]
    p = _graph_file(tmp_path, mutate)
    with pytest.raises(ModelFileError) as exc:
        load_model(p)
    msg = str(exc.value)
    assert "\n" not in msg and "bad.safetensors" in msg
    for frag in fragments:
        assert frag in msg, (frag, msg)


def test_malformed_graph_file_through_cli(cli, tmp_path):
    p = _graph_file(tmp_path, BAD_GRAPHS["unknown op"][0])
    assert_one_line_error(cli("info", str(p)), "wkbnoise: error:", "node 'conv2'", "DeformConv", "bad.safetensors")
    assert_one_line_error(cli("convert", str(p), str(tmp_path / "out.safetensors")), "DeformConv")


def test_missing_importer_is_one_line(tmp_path, monkeypatch):
    p = tmp_path / "net.onnx"
    p.write_bytes(b"\0" * 16)
    monkeypatch.setitem(__import__("sys").modules, "wkbnoise.importers.onnx", None)
    with pytest.raises(ModelFileError, match=r"no \.onnx importer"):
        load_model(p)
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "absent.h5")


# ------------------------------------------------------------------------------------------- the walk
@pytest.mark.parametrize("name,transposes", [("resnet20", 2), ("mobilenetv2", 2), ("vgg", 2), ("lenet5", 2)])
def test_activations_stay_channel_major_between_convolutions(name, transposes, images, monkeypatch):
    """One transpose into (C, N, H, W) for the first conv and one back for Flatten; none per layer."""
    model = zoo.load(name)
    calls = []
    real = graph_module._nchw
    monkeypatch.setattr(graph_module, "_nchw", lambda a: calls.append(a.shape) or real(a))
    model(model.preprocess(images))
    assert len(calls) == transposes, calls


def test_relu_after_conv_runs_in_place():
    model = zoo.load("resnet20")
    steps = {s.node.name: s for s in model.graph.plan}
    relu = next(s for s in model.graph.plan if s.node.op == "Relu" and s.node.inputs[0] == "layer1.0.conv1")
    assert relu.owned == (True,)
    add = next(s for s in model.graph.plan if s.node.op == "Add")
    assert add.owned[0]
    assert steps["conv1"].owned == (False, False, False)  # the image and the weights are never written
