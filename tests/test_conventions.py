"""House rules as tests (style.md section 8): greps over the package source."""

from __future__ import annotations

import re
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "wkbnoise"
SOURCES = sorted(p for p in PKG.rglob("*.py"))


def _text(p: Path) -> str:
    return p.read_text(encoding="utf-8")


def test_library_never_imports_torch():
    offenders = []
    for p in SOURCES:
        if p.parent.name == "zoo" and p.name.startswith("train"):
            continue  # the training script is the one place allowed to use torch (train extra)
        if re.search(r"^\s*(import torch|from torch)", _text(p), re.M):
            offenders.append(str(p.relative_to(PKG)))
    assert offenders == []


def test_no_print_outside_cli():
    offenders = [str(p.relative_to(PKG)) for p in SOURCES
                 if "cli" not in p.parts and p.parent.name != "zoo" and re.search(r"^\s*print\(", _text(p), re.M)]
    assert offenders == []


def test_kernels_never_use_numpy_global_rng():
    for p in SOURCES:
        if p.name.startswith("_kernels") or p.name == "_rng.py":
            assert "np.random." not in _text(p), p


def test_never_unpickle():
    for p in SOURCES:
        text = _text(p)
        assert "import pickle" not in text and "torch.load" not in text and "np.load(" not in text, p


def test_fastmath_never_hard_coded():
    for p in SOURCES:
        assert "fastmath=True" not in _text(p), p
