"""Evaluation of an encoder (a MiniLM-style Hugging Face folder): the library path, input files, and
``python -m wkbnoise eval FOLDER`` end to end."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, grid_means
from safetensors.numpy import save_file

from wkbnoise import FlipRates, InputError
from wkbnoise.evaluation.campaign import Evaluator, monte_carlo_accuracy
from wkbnoise.quant import quantize
from wkbnoise.runtime import load_model
from wkbnoise.sensitivity import layer_sensitivities
from wkbnoise.text import TokenBatch, sentence_inputs

FOLDER = Path(__file__).resolve().parent / "data" / "minilm_tiny"
FAST = ("--methods", "none,uniform-msp,tac", "--budgets", "1", "--images", "40", "--p-flip", "0.01")


@pytest.fixture(scope="module")
def model():
    return load_model(FOLDER / "model.safetensors")


@pytest.fixture(scope="module")
def tokens(model):
    return sentence_inputs(model, backend="plain")[:40]


def _cosine(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    return np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_evaluator_scores_cosine_to_the_int8_embedding(model, tokens):
    ev = Evaluator(model, tokens)
    assert ev.metric == "cosine" and "encoder" in ev.metric_reason and ev.goal(0.95) == 0.95
    w8 = {ly.name: quantize(np.asarray(ly.weight), 8).dequantize() for ly in model.layers}
    args = (tokens.input_ids, tokens.attention_mask, tokens.token_type_ids)
    _, z8 = model.encode(*args, weights=w8)
    _, zf = model.encode(*args)
    assert ev.int8_score == pytest.approx(1.0, abs=1e-6)
    assert ev.clean_score == pytest.approx(np.mean(_cosine(zf, z8)), abs=1e-6) and ev.clean_score < 1
    # one trial by hand: flip the INT8 codes of every layer with the trial's keys, no correction
    rates = FlipRates.symmetric(0.02)
    res = ev.run(rates, method="none", trials=2, seed=5)
    from wkbnoise._rng import derive_keys
    from wkbnoise.correction import build_lut
    from wkbnoise.faults import flip_dequantize

    keys = derive_keys(5, (1,), len(model.layers))
    noisy = {}
    for i, ly in enumerate(model.layers):
        q = ev.quantized[ly.name]
        noisy[ly.name] = flip_dequantize(q.codes, rates, build_lut(rates, q.scale, method="none"), keys[i])
    _, zn = model.encode(*args, weights=noisy)
    assert res.accuracy[1] == pytest.approx(np.mean(_cosine(zn, z8)), abs=1e-6)
    assert res.accuracy[1] < 0.99 and res.accuracy[0] != res.accuracy[1]
    clean = ev.run(FlipRates.symmetric(0.0), trials=1)
    assert clean.accuracy[0] == pytest.approx(1.0, abs=1e-6)


def test_library_paths_take_an_encoder(model, tokens):
    """Evaluator with no inputs (the bundled sentences), a mapping, an ids array; monte_carlo_accuracy."""
    ev = Evaluator(model)
    assert len(ev.x) == 201 and "bundled English sentences" in ev.x.source
    mapping = {"input_ids": tokens.input_ids, "attention_mask": tokens.attention_mask}
    assert Evaluator(model, mapping).int8_score == pytest.approx(1.0, abs=1e-6)
    acc = monte_carlo_accuracy(model, tokens, None, FlipRates.symmetric(0.01), trials=2, seed=0)
    assert acc.shape == (2,) and np.all((acc > 0.5) & (acc <= 1 + 1e-9))
    sens = layer_sensitivities(model, tokens[:8], draws=1)
    assert sens.n_inputs == 8 and np.all(sens.G > 0)
    with pytest.raises(InputError, match="drop the labels"):
        Evaluator(model, tokens, np.zeros(len(tokens), np.int64))
    with pytest.raises(InputError, match="scored by 'cosine'"):
        Evaluator(model, tokens, metric="agreement")


@pytest.mark.slow
def test_edge_example_swap_runs_on_an_encoder():
    """docs/examples/edge_eval.py with its model swapped for the folder's weights, as its docstring says."""
    script = (Path(__file__).resolve().parents[1] / "docs" / "examples" / "edge_eval.py").read_text()
    swapped = script.replace('zoo.load("lenet5")', f'load_model({str(FOLDER / "model.safetensors")!r})')
    assert swapped != script
    swapped = swapped.replace("trials=10", "trials=2")
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(swapped, "edge_eval_swapped", "exec"), {"__name__": "__main__"})  # noqa: S102
    text = out.getvalue()
    assert "clean INT8 cosine: 1.000" in text
    assert len(re.findall(r"protected bits/weight: cosine [\d.]+", text)) == 4


@pytest.mark.slow
def test_cli_eval_encoder_weight_file(cli):
    """``eval FOLDER/model.safetensors``: the weight file of a Hugging Face folder, scored by cosine."""
    res = cli("eval", str(FOLDER / "model.safetensors"), "--trials", "2", *FAST, "--json")
    assert res.returncode == 0, res.stderr
    (row,) = res.json()["summary"]
    assert row["metric"] == "cosine" and row["int8"] == pytest.approx(1.0, abs=1e-6)
    means = grid_means(res.json()["models"][0])
    assert 0.0 < means[("none", 0.0)] < means[("tac", 1.0)] <= 1.0 + 1e-9


def _bad_inputs(tmp_path, name, tensors):
    path = tmp_path / name
    save_file(tensors, str(path))
    return str(path)


def _config(inputs=None, labels=None, path=None):
    from wkbnoise.evaluation.config import ModelSpec, RateSpec, SweepConfig

    return SweepConfig(models=(ModelSpec("m", (RateSpec.symmetric(0.01),), path),), methods=("none",), budgets=(0.0,),
                       trials=1, n_images=1000, calibration=8, inputs=inputs, labels=labels)


def test_load_inputs_refuses_bad_encoder_files(model, tmp_path):
    from wkbnoise.evaluation.sweep import load_inputs

    ids = np.zeros((3, 5), np.int64)
    cases = [
        ({"tokens": ids}, ["holds tokens int64 [3, 5]", "an encoder reads input_ids"]),
        ({"input_ids": ids.astype(np.float32)}, ["input_ids has dtype float32"]),
        ({"input_ids": ids + 5000}, ["input_ids has values in [5000, 5000]", "vocab_size"]),
    ]
    for i, (tensors, fragments) in enumerate(cases):
        path = _bad_inputs(tmp_path, f"bad{i}.safetensors", tensors)
        with pytest.raises(InputError) as info:
            load_inputs(_config(path), model)
        for f in [path, *fragments]:
            assert f in str(info.value)
    good = _bad_inputs(tmp_path, "good.safetensors", {"input_ids": ids + 101})
    x, labels, calib = load_inputs(_config(good), model)
    assert isinstance(x, TokenBatch) and labels is None and len(x) == len(calib) == 3
    labels = _bad_inputs(tmp_path, "labels.safetensors", {"labels": np.zeros(3, np.int64)})
    with pytest.raises(InputError, match="encoder.*no labels"):
        load_inputs(_config(good, labels), model)


def test_load_inputs_refuses_bad_image_files(tmp_path):
    from wkbnoise import zoo
    from wkbnoise.evaluation.sweep import load_inputs

    lenet = zoo.load("lenet5")
    cases = [
        ({"input_ids": np.zeros((3, 5), np.int64)}, ["holds input_ids int64 [3, 5]", "a classifier reads images"]),
        ({"images": np.zeros((3, 28, 28), np.int64)}, ["images int64 [3, 28, 28]", "uint8 pixels"]),
        ({"images": np.zeros((3, 1, 32, 32), np.uint8)}, ["this model reads images of shape [N, 1, 28, 28]"]),
    ]
    for i, (tensors, fragments) in enumerate(cases):
        path = _bad_inputs(tmp_path, f"img{i}.safetensors", tensors)
        with pytest.raises(InputError) as info:
            load_inputs(_config(path), lenet)
        for f in [path, *fragments]:
            assert f in str(info.value)
    images = _bad_inputs(tmp_path, "images.safetensors", {"images": np.zeros((3, 28, 28), np.uint8)})
    labels = _bad_inputs(tmp_path, "labels.safetensors", {"labels": np.zeros(4, np.int64)})
    with pytest.raises(InputError, match=r"one label per input: labels \[3\]"):
        load_inputs(_config(images, labels), lenet)
    good = _bad_inputs(tmp_path, "labels3.safetensors", {"labels": np.arange(3)})
    x, y, _ = load_inputs(_config(images, good), lenet)
    assert x.shape == (3, 28, 28) and y.tolist() == [0, 1, 2]


def test_cli_bad_inputs_exit_2_with_one_line_before_any_work(cli, tmp_path):
    path = _bad_inputs(tmp_path, "tokens.safetensors", {"tokens": np.zeros((3, 5), np.int64)})
    assert_one_line_error(cli("eval", str(FOLDER / "model.safetensors"), "--inputs", path), path,
                          "holds tokens int64 [3, 5]",
                          "an encoder reads input_ids")


def test_token_batch_is_what_the_evaluator_keeps(model, tokens):
    ev = Evaluator(model, tokens)
    assert isinstance(ev.x, TokenBatch) and ev.x is tokens
