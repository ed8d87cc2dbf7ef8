"""The documentation's code runs: every ```python block of docs/*.md and README.md (blocks of one page run
in order, in one namespace), and every script in docs/examples/."""

from __future__ import annotations

import doctest
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: pages whose examples need optional frameworks run in their own test (tests/test_your_model_doc.py)
OWN_TEST = {"your-model.md"}
PAGES = sorted([p for p in ROOT.glob("docs/*.md") if p.name not in OWN_TEST] + [ROOT / "README.md"])
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(text: str) -> list[str]:
    return BLOCK.findall(text)


def test_block_extraction_finds_blocks_and_only_python():
    text = "intro\n```python\nx = 1\n```\n```bash\nls\n```\n```python\nassert x == 1\n```\n"
    assert python_blocks(text) == ["x = 1\n", "assert x == 1\n"]


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p.read_text())], ids=lambda p: p.name)
def test_page_code_runs(page):
    run_page(page.read_text(), page.name)


def run_page(text: str, name: str) -> None:
    """Run a page's blocks in order: ``>>>`` blocks as doctests (outputs compared), others as scripts."""
    namespace: dict = {"__name__": "__docs__"}
    for i, block in enumerate(python_blocks(text)):
        label = f"{name}[block {i}]"
        if block.lstrip().startswith(">>>"):
            test = doctest.DocTestParser().get_doctest(block, namespace, label, name, 0)
            out: list[str] = []
            runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
            runner.run(test, out=out.append, clear_globs=False)
            namespace.update(test.globs)  # DocTest runs on a copy: carry its names to the next block
            if runner.failures:
                pytest.fail("".join(out))
            continue
        try:
            exec(compile(block, label, "exec"), namespace)  # noqa: S102
        except Exception as exc:  # pragma: no cover - the failure message is the point
            pytest.fail(f"{label} raised {type(exc).__name__}: {exc}\n{block}")


def test_a_wrong_doctest_output_fails():
    with pytest.raises(pytest.fail.Exception):
        run_page("```python\n>>> 1 + 1\n3\n\n```\n", "wrong.md")


@pytest.mark.slow
def test_edge_example_runs_and_tac_beats_uniform():
    proc = subprocess.run([sys.executable, str(ROOT / "docs" / "examples" / "edge_eval.py")], capture_output=True,
                          text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    acc = {m: float(v) for m, v in re.findall(r"^\s*(\S+) at [\d.]+ protected bits/weight: accuracy ([\d.]+)",
                                              proc.stdout, re.M)}
    assert set(acc) == {"none", "correct-only", "uniform-msp", "tac"}
    assert acc["tac"] > acc["none"]
    assert "SECDED(72,64) check bits:" in proc.stdout
