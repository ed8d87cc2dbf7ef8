"""``python -m wkbnoise eval`` on a Hugging Face encoder folder: the folder or its weight file, the metric and
why, the inputs and the target in the output."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, grid_means
from safetensors.numpy import save_file

from wkbnoise.runtime import load_model
from wkbnoise.text import sentence_inputs

FOLDER = Path(__file__).resolve().parent / "data" / "minilm_tiny"
FAST = ("--methods", "none,uniform-msp,tac", "--budgets", "1", "--images", "40", "--p-flip", "0.01")


@pytest.fixture(scope="module")
def tokens():
    return sentence_inputs(load_model(FOLDER / "model.safetensors"), backend="plain")  # all 201 sentences


def _json_eval(cli, target, *extra):
    res = cli("eval", str(target), "--trials", "2", *FAST, *extra, "--json")
    assert res.returncode == 0, res.stderr
    return res.json()


@pytest.mark.slow
@pytest.mark.parametrize("target", [FOLDER, FOLDER / "model.safetensors"], ids=["folder", "weight-file"])
def test_cli_eval_encoder_json(cli, target):
    doc = _json_eval(cli, target)
    (row,) = doc["summary"]
    assert row["metric"] == "cosine" and "mean cosine similarity of the mean-pooled embedding" in row["metric_reason"]
    assert row["goal"] == 0.95 and row["int8"] == pytest.approx(1.0, abs=1e-6)
    assert "40 sequences" in row["inputs"] and "bundled English sentences" in row["inputs"]
    assert row["rates"] == "p=0.01"
    (model,) = doc["models"]
    means = grid_means(model)
    assert 0.0 < means[("none", 0.0)] < means[("tac", 1.0)] <= 1.0 + 1e-9


@pytest.mark.slow
def test_cli_eval_encoder_from_an_inputs_file(cli, tokens, tmp_path):
    path = tmp_path / "tokens.safetensors"
    save_file({"input_ids": tokens.input_ids.astype(np.int32), "attention_mask": tokens.attention_mask,
               "token_type_ids": tokens.token_type_ids}, str(path))
    doc = _json_eval(cli, FOLDER, "--inputs", str(path))
    (row,) = doc["summary"]
    assert row["metric"] == "cosine" and row["inputs"].startswith("40 sequences") and str(path) in row["inputs"]
    ref = _json_eval(cli, FOLDER)  # the same ids from the bundled sentences, the same seeded sample: the same numbers
    assert [p["mean"] for p in doc["models"][0]["points"]] == [p["mean"] for p in ref["models"][0]["points"]]


@pytest.mark.slow
def test_cli_eval_encoder_text_says_metric_and_why(cli):
    res = cli("eval", str(FOLDER), "--trials", "2", *FAST)
    assert res.returncode == 0, res.stderr
    metric_lines = [ln for ln in res.stdout.splitlines() if "metric: " in ln]
    assert len(metric_lines) == 1
    assert "metric: cosine (an encoder has no classes: mean cosine similarity of the mean-pooled embedding to the " \
           "clean INT8 model's)" in metric_lines[0]
    assert "target mean cosine >= 0.9500 (absolute)" in res.stdout
    assert re.search(r"inputs: 40 sequences of \d+\.\.\d+ tokens \(bundled English sentences, ", res.stdout)


@pytest.mark.slow
def test_cli_eval_encoder_folder_full_grid(cli):
    """The command of the issue, as a user types it: every method, 201 sentences, 2 trials."""
    res = cli("eval", str(FOLDER), "--trials", "2")
    assert res.returncode == 0, res.stderr
    assert "metric: cosine" in res.stdout and "target mean cosine >= 0.9500 (absolute)" in res.stdout
    assert "inputs: 201 sequences" in res.stdout
    rows = re.findall(r"^  (\S+)\s+[\d.]+\s+([\d.]+) \[", res.stdout, re.M)
    assert {m for m, _ in rows} >= {"none", "correct-only", "uniform-msp", "magnitude", "random", "tac", "gaussian"}


def test_cli_folder_without_weights(cli, tmp_path):
    shutil.copy(FOLDER / "config.json", tmp_path / "config.json")
    assert_one_line_error(cli("eval", str(tmp_path)), "no .safetensors file", "model.safetensors")


@pytest.mark.slow
def test_cli_eval_encoder_samples_the_sentences(cli, tokens, tmp_path):
    """``--images 40`` is a seeded random sample of the 201 sentences, not the first 40: a file holding only the
    first 40 (all of them used) gives other numbers; asking for more sequences than there are is refused."""
    path = tmp_path / "first40.safetensors"
    first = tokens[:40]
    save_file({"input_ids": first.input_ids, "attention_mask": first.attention_mask,
               "token_type_ids": first.token_type_ids}, str(path))
    doc = _json_eval(cli, FOLDER, "--inputs", str(path))
    ref = _json_eval(cli, FOLDER)
    assert [p["mean"] for p in doc["models"][0]["points"]] != [p["mean"] for p in ref["models"][0]["points"]]
    assert_one_line_error(cli("eval", str(FOLDER), "--images", "500", "--trials", "2"),
                          "--images=500", "hold 201 sequences", "--images <= 201")
    assert_one_line_error(cli("eval", str(FOLDER), "--inputs", str(path), "--images", "41", "--trials", "2"),
                          "--images=41", "hold 40 sequences")
