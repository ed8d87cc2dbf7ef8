"""Shared fixtures: a subprocess runner for the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        return json.loads(self.stdout)


def run_cli(*args: str, timeout: float = 600, env: dict | None = None) -> CliResult:
    """Run ``python -m wkbnoise ARGS`` in a subprocess and capture its streams."""
    full_env = dict(os.environ)
    full_env.setdefault("PYTHONHASHSEED", "0")
    if env:
        full_env.update(env)
    proc = subprocess.run(
        [sys.executable, "-m", "wkbnoise", *args],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=full_env,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli():
    """The CLI runner (``cli("physics", "--json")``)."""
    return run_cli


def assert_one_line_error(result: CliResult, *fragments: str) -> None:
    """A user mistake: exit 2, nothing on stdout, exactly one line on stderr, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for frag in fragments:
        assert frag in lines[0], (frag, lines[0])


def grid_means(model_doc: dict) -> dict:
    """``{(method, requested budget): mean}`` of the grid points of one model in ``eval --json``.

    A grid point's ``budget`` is its plan's cost (the longest prefix of the method's path that fits), its
    ``grid_budget`` the budget asked for; ``none`` is keyed at 0.
    """
    return {(p["method"], 0.0 if p["method"] == "none" else p["grid_budget"]): p["mean"]
            for p in model_doc["points"] if p["grid"]}
