"""The Keras HDF5 importer against Keras 3 itself (torch backend): Functional and Sequential models saved
with ``model.save("m.h5")``, and a file in Keras 2's layout written here with h5py, give Keras' outputs
within 1e-4 (relative); unsupported layers and ``.keras`` archives are one-line errors with exit code 2."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from reference import rel_err

if os.environ.setdefault("KERAS_BACKEND", "torch") != "torch":
    pytest.skip("the Keras reference runs on its torch backend", allow_module_level=True)
pytest.importorskip("torch")
keras = pytest.importorskip("keras")
import h5py  # noqa: E402
from conftest import assert_one_line_error  # noqa: E402
from keras import layers as L  # noqa: E402

from wkbnoise.errors import ModelFileError  # noqa: E402
from wkbnoise.importers.keras_h5 import read_keras_h5  # noqa: E402

# until load_model reads .onnx / .h5 / graph files (the graph room's models.py), the CLI checks cannot run
from wkbnoise.runtime import models as _models  # noqa: E402
from wkbnoise.runtime.graph import run  # noqa: E402

needs_loader = pytest.mark.skipif(not hasattr(_models, "model_from_graph"),
                                  reason="load_model does not dispatch to the importers yet")

TOL = 1e-4
# Keras 3's torch backend converts tensors with NumPy 1's __array__ protocol (a NumPy 2 DeprecationWarning)
pytestmark = [pytest.mark.torch, pytest.mark.filterwarnings("ignore::DeprecationWarning:keras")]


def outputs(graph, params, x):
    return run(graph, params, {graph.inputs[0]["name"]: x})[graph.outputs[0]]


def keras_out(model, x):
    return np.asarray(model(x).detach().cpu())


def randomize_bn(model, rng):
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.uniform(-0.5, 0.5, n))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, n))
            layer.gamma.assign(rng.uniform(0.5, 1.5, n))
            layer.beta.assign(rng.uniform(-0.5, 0.5, n))
    return model


def save(model, path):
    model.save(path)  # Keras 3's legacy HDF5 saving
    return path


@pytest.fixture(scope="module")
def functional(tmp_path_factory):
    """Separable convs + BN, an asymmetric 'same' stride-2 conv, depthwise, functional Add / Concatenate,
    pools with 'same' padding, Flatten of a feature map (NHWC order), Dense on 3-D tensors, softmax."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((15, 13, 3))
    x = L.ZeroPadding2D(((1, 0), (0, 2)))(inp)
    x = L.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = L.SeparableConv2D(8, 3, padding="same", use_bias=False)(x)
    x = L.BatchNormalization()(x)
    x = L.ReLU(max_value=6.0)(x)
    y = L.DepthwiseConv2D(3, padding="same", depth_multiplier=2)(x)
    y = L.BatchNormalization()(y)
    y = L.Activation("hard_sigmoid")(y)
    z = L.SeparableConv2D(16, 3, strides=2, padding="same", activation="swish")(x)
    z = L.Conv2D(16, 3, padding="valid")(L.ZeroPadding2D(1)(z))
    z = L.MaxPooling2D(3, strides=1, padding="same")(z)
    y = L.AveragePooling2D(3, strides=2, padding="same")(y)
    y = L.MaxPooling2D(2, strides=1, padding="same")(y)
    a = L.Add()([y, z])
    c = L.Concatenate()([a, L.Conv2D(4, 1, activation="tanh")(a)])
    f = L.Dropout(0.3)(L.Flatten()(c))
    g = L.GlobalAveragePooling2D()(c)
    h = L.Concatenate()([f, g])
    h = L.BatchNormalization()(L.Dense(16, activation="gelu")(h))
    h = L.Dense(5, activation="sigmoid")(L.Reshape((4, 4))(h))
    logits = L.Dense(10, name="logits")(L.Flatten()(h))
    probs = L.Softmax(name="probs")(logits)
    model = randomize_bn(keras.Model(inp, probs), np.random.default_rng(0))
    path = save(model, tmp_path_factory.mktemp("keras") / "functional.h5")
    return model, keras.Model(inp, logits), path


def test_functional_matches_keras(functional):
    model, head, path = functional
    graph, params = read_keras_h5(path)
    x = np.random.default_rng(1).standard_normal((4, 15, 13, 3)).astype(np.float32)
    err = rel_err(outputs(graph, params, x), keras_out(model, x))
    assert err <= TOL, err
    # the logits (the model's output before its softmax) too: same graph, one node earlier
    (gemm,) = [n for n in graph.nodes if n.name == "logits"]
    logit = run(graph, params, {"images": x})
    assert graph.outputs == ("probs/softmax",) and gemm.op == "Gemm"
    from wkbnoise.runtime.graph import Graph

    sub = Graph.from_json({**graph.to_dict(), "outputs": [gemm.outputs[0]]})
    ref = keras_out(head, x)
    err = rel_err(run(sub, params, {"images": x})[gemm.outputs[0]], ref)
    assert err <= TOL, err
    assert logit[graph.outputs[0]].shape == (4, 10)
    # a wrong 'same' split (padding before instead of after) is caught by the comparison
    conv = next(n for n in graph.nodes if n.op == "Conv" and n.attrs["strides"] == [2, 2])
    pads = conv.attrs["pads"]
    assert pads != pads[2:] + pads[:2]
    bad = Graph.from_json(
        {
            **sub.to_dict(),
            "nodes": [
                {**n.to_dict(), "attrs": {**n.attrs, "pads": pads[2:] + pads[:2]}}
                if n.name == conv.name
                else n.to_dict()
                for n in sub.nodes
            ],
        }
    )
    assert rel_err(run(bad, params, {"images": x})[gemm.outputs[0]], ref) > TOL


def test_functional_graph_structure(functional):
    _, _, path = functional
    graph, params = read_keras_h5(path)
    assert graph.inputs[0]["name"] == "images" and graph.inputs[0]["shape"] == [None, 15, 13, 3]
    ops = [n.op for n in graph.nodes]
    assert (
        ops[0] == "Transpose" and "BatchNormalization" not in ops[: ops.index("Flatten")]
    )  # conv BNs folded
    assert "separable_conv2d.depthwise.weight" in graph.quantized
    assert "separable_conv2d.pointwise.weight" in graph.quantized
    assert params["separable_conv2d.depthwise.weight"].shape == (8, 1, 3, 3)
    convs = [n for n in graph.nodes if n.op in ("Conv", "Gemm", "MatMul")]
    assert set(graph.quantized) == {n.inputs[1] for n in convs}


def test_sequential_matches_keras(tmp_path):
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((12, 12, 1)),
            L.Conv2D(6, 5, activation="relu"),
            L.MaxPooling2D(),
            L.BatchNormalization(),
            L.Conv2D(8, 3, padding="same", use_bias=False),
            L.BatchNormalization(),
            L.Activation("relu"),
            L.AveragePooling2D(2),
            L.Flatten(),
            L.Dense(12, activation="relu"),
            L.Dropout(0.5),
            L.Dense(3, activation="softmax"),
        ]
    )
    randomize_bn(model, np.random.default_rng(2))
    graph, params = read_keras_h5(save(model, tmp_path / "seq.hdf5"))
    assert [n.op for n in graph.nodes].count("BatchNormalization") == 1  # after a pool: kept as a node
    x = np.random.default_rng(3).standard_normal((5, 12, 12, 1)).astype(np.float32)
    assert rel_err(outputs(graph, params, x), keras_out(model, x)) <= TOL


def test_image_output_stays_nhwc(tmp_path):
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((6, 5, 2)), L.Conv2D(3, 3, strides=2, padding="same")])
    graph, params = read_keras_h5(save(model, tmp_path / "fm.h5"))
    x = np.random.default_rng(4).standard_normal((2, 6, 5, 2)).astype(np.float32)
    out = outputs(graph, params, x)
    assert out.shape == (2, 3, 3, 3)
    assert rel_err(out, keras_out(model, x)) <= TOL


def _keras2_file(path, model):
    """``model`` (Conv2D-Flatten-Dense, functional) in Keras 2's HDF5 layout: list-style inbound nodes,
    ``batch_input_shape``, weight names ``<layer>/kernel:0``."""
    conv, dense = model.layers[1], model.layers[3]
    cfg = {
        "class_name": "Functional",
        "config": {
            "name": "model",
            "layers": [
                {
                    "class_name": "InputLayer",
                    "name": "input_1",
                    "config": {"batch_input_shape": [None, 7, 7, 2], "dtype": "float32", "name": "input_1"},
                    "inbound_nodes": [],
                },
                {
                    "class_name": "Conv2D",
                    "name": "conv2d",
                    "inbound_nodes": [[["input_1", 0, 0, {}]]],
                    "config": {
                        "name": "conv2d",
                        "filters": 4,
                        "kernel_size": [3, 3],
                        "strides": [2, 2],
                        "padding": "same",
                        "data_format": "channels_last",
                        "dilation_rate": [1, 1],
                        "activation": "relu",
                        "use_bias": True,
                    },
                },
                {
                    "class_name": "Flatten",
                    "name": "flatten",
                    "inbound_nodes": [[["conv2d", 0, 0, {}]]],
                    "config": {"name": "flatten", "data_format": "channels_last"},
                },
                {
                    "class_name": "Dense",
                    "name": "dense",
                    "inbound_nodes": [[["flatten", 0, 0, {}]]],
                    "config": {"name": "dense", "units": 3, "activation": "linear", "use_bias": True},
                },
            ],
            "input_layers": [["input_1", 0, 0]],
            "output_layers": [["dense", 0, 0]],
        },
    }
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(cfg)
        f.attrs["keras_version"] = "2.13.1"
        f.attrs["backend"] = "tensorflow"
        mw = f.create_group("model_weights")
        for name, layer in (("input_1", None), ("conv2d", conv), ("flatten", None), ("dense", dense)):
            g = mw.create_group(name)
            names = [] if layer is None else [f"{name}/kernel:0", f"{name}/bias:0"]
            g.attrs["weight_names"] = np.array([n.encode() for n in names], dtype="S")
            for n, v in zip(names, [] if layer is None else layer.get_weights(), strict=True):
                g.create_dataset(n, data=v)
    return path


def test_keras2_layout(tmp_path):
    keras.utils.set_random_seed(3)
    inp = keras.Input((7, 7, 2))
    x = L.Conv2D(4, 3, strides=2, padding="same", activation="relu")(inp)
    model = keras.Model(inp, L.Dense(3)(L.Flatten()(x)))
    graph, params = read_keras_h5(_keras2_file(tmp_path / "k2.h5", model))
    x = np.random.default_rng(5).standard_normal((3, 7, 7, 2)).astype(np.float32)
    assert rel_err(outputs(graph, params, x), keras_out(model, x)) <= TOL


# ---- errors ---------------------------------------------------------------------------------------------
@needs_loader
def test_unsupported_layer_is_one_line_via_cli(tmp_path, cli):
    model = keras.Sequential(
        [keras.Input((8, 3)), L.Conv1D(4, 3, name="the_conv1d"), L.Flatten(), L.Dense(2)]
    )
    path = save(model, tmp_path / "conv1d.h5")
    with pytest.raises(
        ModelFileError, match="layer 'the_conv1d' \\(Conv1D\\) in .*conv1d.h5: layer Conv1D is not supported"
    ):
        read_keras_h5(path)
    assert_one_line_error(cli("info", str(path)), "the_conv1d", "Conv1D", "conv1d.h5")


@needs_loader
def test_keras_zip_and_weights_only_files_are_one_line(tmp_path, cli):
    model = keras.Sequential([keras.Input((4,)), L.Dense(2)])
    model.save(tmp_path / "m.keras")
    assert_one_line_error(cli("info", str(tmp_path / "m.keras")), ".keras", "model.h5")
    model.save_weights(tmp_path / "w.weights.h5")
    (tmp_path / "w.weights.h5").rename(tmp_path / "w.h5")
    with pytest.raises(ModelFileError, match="no 'model_config'"):
        read_keras_h5(tmp_path / "w.h5")
    (tmp_path / "bad.h5").write_bytes(b"not hdf5 at all")
    assert_one_line_error(cli("info", str(tmp_path / "bad.h5")), "bad.h5")
