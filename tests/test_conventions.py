"""House rules as tests (style.md section 8): greps over the package source."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "wkbnoise"
SOURCES = sorted(p for p in PKG.rglob("*.py"))


def _text(p: Path) -> str:
    return p.read_text(encoding="utf-8")


#: optional-extra converters that import torch lazily, inside the function that needs it
LAZY_TORCH = {"importers/torch.py"}


def test_library_never_imports_torch():
    offenders = []
    for p in SOURCES:
        if p.parent.name == "zoo" and p.name.startswith("train"):
            continue  # the training script is the one place allowed to use torch (train extra)
        if p.relative_to(PKG).as_posix() in LAZY_TORCH:
            # an optional converter: torch only inside a function, never at import time of the module
            if re.search(r"^(import torch|from torch)", _text(p), re.M):
                offenders.append(str(p.relative_to(PKG)))
            continue
        if re.search(r"^\s*(import torch|from torch)", _text(p), re.M):
            offenders.append(str(p.relative_to(PKG)))
    assert offenders == []


def test_no_print_outside_cli():
    offenders = [str(p.relative_to(PKG)) for p in SOURCES
                 if "cli" not in p.parts and p.parent.name != "zoo" and re.search(r"^\s*print\(", _text(p), re.M)]
    assert offenders == []


# NumPy's legacy global-state functions (np.random.rand, .seed, .normal, ...). Explicit objects such as
# np.random.SeedSequence / default_rng / Generator carry their own state and are allowed.
_GLOBAL_RNG = re.compile(r"np\.random\.(?!SeedSequence\b|default_rng\b|Generator\b|Philox\b|PCG64\b)[a-z_]+\s*\(")


def test_global_rng_pattern_rejects_legacy_calls():
    assert _GLOBAL_RNG.search("x = np.random.rand(3)")
    assert _GLOBAL_RNG.search("np.random.seed(0)")
    assert not _GLOBAL_RNG.search("np.random.SeedSequence(1, spawn_key=(2,))")
    assert not _GLOBAL_RNG.search("rng = np.random.default_rng(0)")


def test_library_never_uses_numpy_global_rng():
    offenders = [str(p.relative_to(PKG)) for p in SOURCES if _GLOBAL_RNG.search(_text(p))]
    assert offenders == []


def _unpickling_sites(source: str) -> list[str]:
    """Imports of pickle-like modules and calls of ``*.load``-style unpicklers in code (not in strings)."""
    bad_modules = {"pickle", "cPickle", "dill", "joblib", "cloudpickle"}
    bad_calls = {("torch", "load"), ("np", "load"), ("numpy", "load"), ("pickle", "load"), ("pickle", "loads")}
    sites = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            sites += [a.name for a in node.names if a.name.split(".")[0] in bad_modules]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in bad_modules:
            sites.append(node.module)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and isinstance(node.func.value, ast.Name) and (node.func.value.id, node.func.attr) in bad_calls:
            sites.append(f"{node.func.value.id}.{node.func.attr}")
    return sites


def test_unpickling_check_finds_real_calls_not_strings():
    assert _unpickling_sites("import pickle") == ["pickle"]
    assert _unpickling_sites("import torch\nsd = torch.load(p)") == ["torch.load"]
    assert _unpickling_sites("msg = 'convert with torch.load(PATH, weights_only=True)'") == []


def test_never_unpickle():
    offenders = {str(p.relative_to(PKG)): s for p in SOURCES if (s := _unpickling_sites(_text(p)))}
    assert offenders == {}


def test_fastmath_never_hard_coded():
    for p in SOURCES:
        assert "fastmath=True" not in _text(p), p
