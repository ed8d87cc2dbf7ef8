"""The runtime's BERT encoder against a golden reference made by Hugging Face ``transformers``.

``tests/data/bert_tiny/`` holds a tiny random ``BertModel`` saved by ``save_pretrained``
(``model.safetensors`` and ``config.json``) and ``golden.safetensors`` (fixed padded inputs,
``last_hidden_state`` and the masked mean pool), written by ``tests/data/make_bert_golden.py``.
These tests need neither torch nor transformers.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from reference import rel_err
from safetensors.numpy import load_file, save_file

from wkbnoise import ModelFileError
from wkbnoise.runtime import load_model, read_safetensors

DATA = Path(__file__).resolve().parent / "data" / "bert_tiny"
WEIGHTS = DATA / "model.safetensors"
CONFIG = DATA / "config.json"
RTOL = 1e-4
QUERY0 = "encoder.layer.0.attention.self.query.weight"



def matches_golden(model, golden) -> tuple[float, float]:
    """Relative errors of (last_hidden_state, mean_pooled) of ``model`` on the golden inputs."""
    hidden, pooled = model.encode(golden["input_ids"], golden["attention_mask"], golden["token_type_ids"])
    assert hidden.dtype == np.float32 and pooled.dtype == np.float32
    return rel_err(hidden, golden["last_hidden_state"]), rel_err(pooled, golden["mean_pooled"])


@pytest.fixture(scope="module")
def golden():
    return load_file(str(DATA / "golden.safetensors"))


@pytest.fixture(scope="module")
def config():
    return json.loads(CONFIG.read_text(encoding="utf-8"))


def test_golden_files_are_small_and_as_described(golden, config):
    assert sum(p.stat().st_size for p in DATA.iterdir()) < 200_000
    n, t = golden["input_ids"].shape
    d = config["hidden_size"]
    assert golden["last_hidden_state"].shape == (n, t, d) and golden["mean_pooled"].shape == (n, d)
    assert config["hidden_act"] == "gelu" and config["num_hidden_layers"] == 2
    mask = golden["attention_mask"]
    assert mask.min() == 0 and mask.max() == 1 and (mask.sum(axis=1) >= 1).all()
    assert (mask.sum(axis=1) < t).sum() >= 2  # some sequences are padded
    assert set(np.unique(golden["token_type_ids"])) == {0, 1}
    # the reference itself: the mean pool is the masked mean of the hidden states
    m = mask[..., None].astype(np.float64)
    pooled = (golden["last_hidden_state"] * m).sum(axis=1) / m.sum(axis=1)
    np.testing.assert_allclose(golden["mean_pooled"], pooled, rtol=0, atol=1e-5)


def test_runtime_matches_transformers_golden(golden):
    model = load_model(WEIGHTS, config=CONFIG)
    assert model.arch == "bert" and model.task == "encoder"
    err_hidden, err_pooled = matches_golden(model, golden)
    assert err_hidden < RTOL, err_hidden
    assert err_pooled < RTOL, err_pooled


def test_config_as_dict_and_forward_return_the_mean_pool(golden, config):
    model = load_model(WEIGHTS, config=config)
    assert model.config["hidden_size"] == 32 and model.config["vocab_size"] == 100
    pooled = model.forward(golden["input_ids"], attention_mask=golden["attention_mask"],
                           token_type_ids=golden["token_type_ids"])
    assert rel_err(pooled, golden["mean_pooled"]) < RTOL
    # chunked encoding gives the same arrays
    hidden1, _ = model.encode(golden["input_ids"], golden["attention_mask"], golden["token_type_ids"],
                              batch_size=1)
    assert rel_err(hidden1, golden["last_hidden_state"]) < RTOL


def test_config_json_beside_the_weights_is_found(golden):
    model = load_model(WEIGHTS)  # no config given: tests/data/bert_tiny/config.json is read
    assert model.config["num_attention_heads"] == 4
    err_hidden, err_pooled = matches_golden(model, golden)
    assert err_hidden < RTOL and err_pooled < RTOL


def test_missing_config_is_a_model_file_error(tmp_path):
    lone = tmp_path / "model.safetensors"
    shutil.copyfile(WEIGHTS, lone)
    with pytest.raises(ModelFileError, match="config.json"):
        load_model(lone)


def test_bert_prefix_and_task_heads_are_read(tmp_path, golden):
    """``BertFor*`` checkpoints save ``bert.``-prefixed keys beside head tensors; the encoder is the same."""
    tensors = {"bert." + k: np.array(v) for k, v in read_safetensors(WEIGHTS).tensors.items()}
    rng = np.random.default_rng(0)
    tensors["cls.predictions.bias"] = rng.standard_normal(100).astype(np.float32)
    tensors["classifier.weight"] = rng.standard_normal((2, 32)).astype(np.float32)
    path = tmp_path / "model.safetensors"
    save_file(tensors, str(path), metadata={"format": "pt"})
    shutil.copyfile(CONFIG, tmp_path / "config.json")
    model = load_model(path)
    assert model.layers[0].name == "bert.embeddings.word_embeddings.weight"
    err_hidden, err_pooled = matches_golden(model, golden)
    assert err_hidden < RTOL and err_pooled < RTOL


def test_a_perturbed_weight_fails_the_comparison(tmp_path, golden):
    """The golden check can fail: one weight changed by a small amount breaks the 1e-4 tolerance."""
    tensors = {k: np.array(v) for k, v in read_safetensors(WEIGHTS).tensors.items()}
    tensors[QUERY0][3, 5] += 0.05
    path = tmp_path / "model.safetensors"
    save_file(tensors, str(path), metadata={"format": "pt"})
    err_hidden, err_pooled = matches_golden(load_model(path, config=CONFIG), golden)
    assert err_hidden > 10 * RTOL and err_pooled > 5 * RTOL


def test_replacement_weights_and_ignored_mask_fail_the_comparison(golden):
    """The same check rejects a swapped-in weight and an encoder that ignores the padding mask."""
    model = load_model(WEIGHTS, config=CONFIG)
    w = model.params[QUERY0].copy()
    w[3, 5] += 0.05
    hidden, _ = model.encode(golden["input_ids"], golden["attention_mask"], golden["token_type_ids"],
                             weights={QUERY0: w})
    assert rel_err(hidden, golden["last_hidden_state"]) > 10 * RTOL
    assert matches_golden(model, golden)[0] < RTOL  # the model itself is untouched
    hidden, _ = model.encode(golden["input_ids"], None, golden["token_type_ids"])
    assert rel_err(hidden, golden["last_hidden_state"]) > 10 * RTOL
