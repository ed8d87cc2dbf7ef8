"""``eval`` on a Hugging Face text classifier (``BertForSequenceClassification``): token ids in, logits out,
scored by accuracy against labels or by agreement with the clean INT8 model, like an image classifier."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error
from safetensors.numpy import load_file, save_file

from wkbnoise import load_model
from wkbnoise.evaluation.campaign import Evaluator
from wkbnoise.rates import FlipRates
from wkbnoise.text import TokenBatch

FOLDER = Path(__file__).resolve().parent / "data" / "bert_cls_tiny"


@pytest.fixture(scope="module")
def golden():
    return load_file(str(FOLDER / "golden.safetensors"))  # transformers' logits on 3 sequences


@pytest.fixture(scope="module")
def files(tmp_path_factory, golden):
    """60 sequences: the 3 golden ones 20 times each; labels = transformers' argmax (so float accuracy is 1)."""
    d = tmp_path_factory.mktemp("cls")
    reps = 20
    tokens = {k: np.tile(golden[k], (reps, 1)) for k in ("input_ids", "attention_mask", "token_type_ids")}
    labels = np.tile(np.argmax(golden["logits"], axis=1), reps).astype(np.int64)
    save_file(tokens, str(d / "tokens.safetensors"))
    save_file({"labels": labels}, str(d / "labels.safetensors"))
    return d / "tokens.safetensors", d / "labels.safetensors", tokens, labels


def test_evaluator_scores_a_text_classifier_against_transformers(golden, files):
    _, _, tokens, labels = files
    model = load_model(FOLDER)
    ev = Evaluator(model, tokens, labels)
    assert isinstance(ev.x, TokenBatch) and ev.metric == "accuracy"
    np.testing.assert_allclose(ev.z_float[:3], golden["logits"], rtol=0, atol=1e-5)
    assert ev.clean_score == 1.0  # labels are transformers' own predictions
    # a wrong reference is rejected: shifted labels score 0
    assert Evaluator(model, tokens, (labels + 1) % 3).clean_score == 0.0
    res = ev.run(FlipRates.symmetric(0.05), method="tac", plan={n: 8 for n in ev.names}, trials=2)
    assert np.all(res.accuracy == ev.int8_score)  # everything protected: every trial is the clean INT8 model
    none = ev.run(FlipRates.symmetric(0.2), method="none", trials=3)
    assert np.all((0 <= none.accuracy) & (none.accuracy <= 1)) and none.distortion.mean() > 0


@pytest.mark.slow
def test_cli_eval_text_classifier(cli, files):
    tok, lab, _, labels = files
    res = cli("eval", str(FOLDER), "--inputs", str(tok), "--labels", str(lab), "--trials", "2",
              "--methods", "none,tac", "--budgets", "1", "--json")
    assert res.returncode == 0, res.stderr
    doc = res.json()
    (row,) = doc["summary"]
    assert row["metric"] == "accuracy" and row["clean"] == 1.0 and row["inputs"].startswith("60 sequences")
    assert doc["config"]["calibration"] == 60  # never reports more calibration inputs than there are
    hist = doc["models"][0]["label_histogram"]
    assert sum(hist.values()) == 60 and len(hist) == len(set(labels.tolist()))


def test_cli_text_classifier_mistakes(cli, files, tmp_path):
    tok, lab, _, _ = files
    assert_one_line_error(cli("eval", str(FOLDER), "--trials", "2"), "has no tokenizer", "--inputs")
    assert_one_line_error(cli("eval", str(FOLDER), "--inputs", str(tok), "--labels", str(tok), "--trials", "2"),
                          "no 'labels' tensor")
    bad = tmp_path / "bad_labels.safetensors"
    save_file({"labels": np.full(60, 7, np.int64)}, str(bad))
    assert_one_line_error(cli("eval", str(FOLDER), "--inputs", str(tok), "--labels", str(bad), "--trials", "2"),
                          "--labels")
    assert_one_line_error(cli("eval", str(FOLDER), "--inputs", str(tok), "--images", "61", "--trials", "2"),
                          "--images=61", "hold 60 sequences")
