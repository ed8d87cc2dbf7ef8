"""docs/your-model.md runs: each route's ```python blocks in one namespace, then its ```bash commands
(``python -m wkbnoise ...``) in the same scratch folder. The files a route takes as given (a Keras model,
an ONNX file, a Hugging Face folder) are made here first; a route whose framework is absent is skipped."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# until load_model reads .onnx / .h5 / graph files (the graph room's models.py), the CLI checks cannot run
from wkbnoise.runtime import models as _models  # noqa: E402

needs_loader = pytest.mark.skipif(not hasattr(_models, "model_from_graph"),
                                  reason="load_model does not dispatch to the importers yet")

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "your-model.md"
# Keras 3's torch backend converts tensors with NumPy 1's __array__ protocol (a NumPy 2 DeprecationWarning)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:keras")
BLOCK = re.compile(r"^```(python|bash)\n(.*?)^```", re.S | re.M)


def section(title: str) -> list[tuple[str, str]]:
    text = PAGE.read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return BLOCK.findall(text[start : end if end > 0 else None])


def run_section(title: str, cwd: Path) -> list[str]:
    """Run the section's blocks in ``cwd``; return the stdout of each command."""
    outs, namespace = [], {"__name__": "__docs__"}
    old = os.getcwd()
    os.chdir(cwd)
    try:
        for kind, code in section(title):
            if kind == "python":
                exec(compile(code, f"your-model.md[{title}]", "exec"), namespace)  # noqa: S102
                continue
            for line in code.splitlines():
                line = line.split("#")[0].strip()
                if not line:
                    continue
                argv = shlex.split(line)
                assert argv[:3] == ["python", "-m", "wkbnoise"], line
                env = {
                    **os.environ,
                    "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                }
                proc = subprocess.run(
                    [sys.executable, *argv[1:]], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
                )
                assert proc.returncode == 0, (line, proc.stderr)
                outs.append(proc.stdout)
    finally:
        os.chdir(old)
    return outs


def test_every_route_has_at_most_three_commands():
    for title in (
        "From a PyTorch module",
        "From a Keras file",
        "From an ONNX file",
        "From a Hugging Face folder",
    ):
        blocks = section(title)
        commands = [ln for kind, code in blocks if kind == "bash" for ln in code.splitlines() if ln.strip()]
        assert 1 <= len(commands) + any(kind == "python" for kind, _ in blocks) <= 3, title


@pytest.mark.slow
@needs_loader
def test_pytorch_route(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    (out,) = run_section("From a PyTorch module", tmp_path)
    assert "agreement" in out


@pytest.mark.slow
@needs_loader
def test_keras_route(tmp_path):
    if os.environ.setdefault("KERAS_BACKEND", "torch") != "torch":
        pytest.skip("the Keras model is made on the torch backend")
    pytest.importorskip("torch")
    keras = pytest.importorskip("keras")
    from safetensors.numpy import save_file

    keras.utils.set_random_seed(0)
    layers = keras.layers
    inp = keras.Input((32, 32, 3))
    x = layers.BatchNormalization()(layers.SeparableConv2D(8, 3, padding="same")(inp))
    x = layers.Add()([layers.ReLU()(x), layers.Conv2D(8, 1)(inp)])
    model = keras.Model(inp, layers.Dense(10)(layers.GlobalAveragePooling2D()(x)))
    model.save(tmp_path / "model.h5")
    save_file(
        {"images": np.random.default_rng(0).standard_normal((16, 32, 32, 3)).astype(np.float32)},
        str(tmp_path / "images_nhwc.safetensors"),
    )
    info, out = run_section("From a Keras file", tmp_path)
    assert "agreement" in out


@pytest.mark.slow
@needs_loader
def test_onnx_route(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    import torch_nets as tn
    from safetensors.numpy import save_file
    from test_import_onnx import export

    torch.manual_seed(0)
    export(
        tn.randomize_bn(tn.ResNet(width=8, classes=10)), torch.randn(1, 3, 32, 32), tmp_path / "resnet18.onnx"
    )
    save_file(
        {"images": np.random.default_rng(0).standard_normal((8, 3, 32, 32)).astype(np.float32)},
        str(tmp_path / "images.safetensors"),
    )
    info, out, _ = run_section("From an ONNX file", tmp_path)
    assert "agreement" in out
    assert (tmp_path / "resnet18.safetensors").is_file()


@pytest.mark.slow
@needs_loader
def test_hugging_face_route(tmp_path):
    """The tiny random BERT of tests/data with a WordPiece vocabulary of its size stands in for MiniLM."""
    import json
    import shutil

    src = ROOT / "tests" / "data" / "bert_tiny"
    folder = tmp_path / "my-minilm"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(src / name, folder / name)
    vocab = json.loads((src / "config.json").read_text())["vocab_size"]
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz.,'!?"]
    words += [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
    words += ["the", "a", "is", "of", "and", "to", "in", "memory", "model", "bit"]
    words += [f"[unused{i}]" for i in range(vocab - len(words))]
    (folder / "vocab.txt").write_text("\n".join(words[:vocab]) + "\n")
    info, out = run_section("From a Hugging Face folder", tmp_path)
    assert "cosine" in out
