"""The runtime's logits of the trained zoo models against PyTorch golden logits.

``tests/data/zoo_golden_logits.safetensors`` (written by ``tests/data/make_zoo_golden.py``) holds the float
PyTorch logits of each zoo model on the first 64 bundled test images and the SHA-256 of the weight file they
came from. Without torch the runtime is compared with those; a model retrained since the golden was made is
skipped (with the reason), and one whose weight hash matches but whose logits differ fails. With torch the
runtime is also compared with a live PyTorch forward pass.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from reference import rel_err
from safetensors import safe_open
from safetensors.numpy import load_file

from wkbnoise import zoo

GOLDEN = Path(__file__).resolve().parent / "data" / "zoo_golden_logits.safetensors"
RTOL = 1e-4
REGENERATE = "rerun `python tests/data/make_zoo_golden.py` (needs torch)"



def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def golden():
    with safe_open(str(GOLDEN), framework="np") as fh:
        meta = fh.metadata()
    return load_file(str(GOLDEN)), meta


@pytest.fixture(scope="module")
def images(golden):
    _, meta = golden
    x = np.ascontiguousarray(zoo.test_set()[0][:int(meta["n_images"])])
    assert hashlib.sha256(x.tobytes()).hexdigest() == meta["images_sha256"], (
        f"the bundled test images differ from those of the golden logits; {REGENERATE}")
    return x


def weight_file(name, golden):
    """The model's weight file, or a skip with the reason when it is absent or newer than the golden."""
    logits, meta = golden
    path = zoo.ZOO_DIR / f"{name}.safetensors"
    if not path.is_file():
        pytest.skip(f"zoo weight file {path.name} is not in this checkout")
    if name not in logits:
        pytest.skip(f"no golden logits for {name} yet; {REGENERATE}")
    if sha256(path) != meta[f"sha256.{name}"]:
        pytest.skip(f"{path.name} was retrained after the golden logits were made "
                    f"(sha256 {sha256(path)[:12]} != {meta[f'sha256.{name}'][:12]}); {REGENERATE}")
    return path


def _golden_script():
    """``tests/data/make_zoo_golden.py`` as a module (it imports torch)."""
    script = GOLDEN.with_name("make_zoo_golden.py")
    spec = importlib.util.spec_from_file_location("make_zoo_golden", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_golden_file_layout(golden):
    logits, meta = golden
    assert GOLDEN.stat().st_size < 200_000
    assert set(logits) <= set(zoo.names()) and logits
    for name, arr in logits.items():
        assert arr.dtype == np.float32 and arr.shape == (int(meta["n_images"]), 10), name
        assert np.isfinite(arr).all() and np.ptp(arr) > 1.0, name
        assert len(meta[f"sha256.{name}"]) == 64
    assert json.loads(meta["preprocess"]) == {"mean": 0.1307, "std": 0.3081}


@pytest.mark.parametrize("name", zoo.names())
def test_runtime_matches_golden_logits(name, golden, images):
    weight_file(name, golden)
    model = zoo.load(name)
    got = model(model.preprocess(images))
    ref = golden[0][name]
    err = rel_err(got, ref)
    assert err < RTOL, f"{name}: runtime vs PyTorch golden logits, relative error {err:.3g}"
    labels = zoo.test_set()[1][:len(images)]
    assert np.array_equal(got.argmax(axis=1), ref.argmax(axis=1))
    assert np.mean(ref.argmax(axis=1) == labels) > 0.9  # a trained model, not noise


def test_golden_comparison_can_fail(golden, images):
    """One weight nudged by 10% of the layer's largest weight moves the logits far beyond the tolerance."""
    name = next((n for n in zoo.names() if n in golden[0] and (zoo.ZOO_DIR / f"{n}.safetensors").is_file()
                 and sha256(zoo.ZOO_DIR / f"{n}.safetensors") == golden[1][f"sha256.{n}"]), None)
    if name is None:
        pytest.skip(f"no zoo model with current golden logits; {REGENERATE}")
    model = zoo.load(name)
    layer = model.layers[0]
    w = layer.weight.copy()
    idx = np.unravel_index(np.argmax(np.abs(w)), w.shape)
    w[idx] *= 1.1
    got = model(model.preprocess(images), weights={layer.name: w})
    assert rel_err(got, golden[0][name]) > 10 * RTOL


def test_retrained_weights_skip_with_the_reason(golden):
    """A weight file whose hash is not the golden's is skipped (stale golden), never compared."""
    logits, meta = golden
    name = next(iter(logits))
    if not (zoo.ZOO_DIR / f"{name}.safetensors").is_file():
        pytest.skip(f"zoo weight file {name}.safetensors is not in this checkout")
    stale = dict(meta, **{f"sha256.{name}": "0" * 64})
    with pytest.raises(pytest.skip.Exception, match="retrained after the golden"):
        weight_file(name, (logits, stale))
    with pytest.raises(pytest.skip.Exception, match="no golden logits"):
        weight_file(name, ({}, meta))


@pytest.mark.torch
@pytest.mark.parametrize("name", zoo.names())
def test_runtime_matches_live_torch(name, images):
    pytest.importorskip("torch")
    make = _golden_script()
    path = zoo.ZOO_DIR / f"{name}.safetensors"
    if not path.is_file():
        pytest.skip(f"zoo weight file {path.name} is not in this checkout")
    ref = make.torch_logits(path, images)
    model = zoo.load(name)
    err = rel_err(model(model.preprocess(images)), ref)
    assert err < RTOL, f"{name}: runtime vs live PyTorch logits, relative error {err:.3g}"
