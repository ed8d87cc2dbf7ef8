"""Hugging Face folders through the graph path, against golden outputs of ``transformers``.

``tests/data/vit_tiny/`` (a ``ViTForImageClassification``) and ``tests/data/bert_cls_tiny/`` (a
``BertForSequenceClassification``) were saved by ``save_pretrained`` in ``tests/data/make_hf_golden.py``,
with the model's outputs on fixed inputs in ``golden.safetensors``. These tests need neither torch nor
transformers.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error
from reference import rel_err
from safetensors.numpy import load_file, save_file

from wkbnoise import InputError, ModelFileError, load_model
from wkbnoise.runtime import read_safetensors, save_model

DATA = Path(__file__).resolve().parent / "data"
VIT, BERT_CLS, BERT = DATA / "vit_tiny", DATA / "bert_cls_tiny", DATA / "bert_tiny"
RTOL = 1e-4


@pytest.fixture(scope="module")
def vit_golden():
    return load_file(str(VIT / "golden.safetensors"))


@pytest.fixture(scope="module")
def bert_golden():
    return load_file(str(BERT_CLS / "golden.safetensors"))


def test_vit_classifier_matches_transformers(vit_golden):
    model = load_model(VIT)
    assert model.arch == "vit" and model.task == "classifier"
    assert model.input_spec["shape"] == [3, 16, 16] and model.input_spec["mean"] == [0.485, 0.456, 0.406]
    x = model.preprocess(vit_golden["images"])  # preprocessor_config.json's mean and std
    np.testing.assert_allclose(x, vit_golden["pixel_values"], rtol=0, atol=2e-6)
    out = model.outputs(x)
    assert rel_err(out["logits"], vit_golden["logits"]) < RTOL
    assert rel_err(out["last_hidden_state"], vit_golden["last_hidden_state"]) < RTOL
    np.testing.assert_array_equal(model(x), out["logits"])
    names = [q.name for q in model.layers]
    assert names[0] == "vit.embeddings.patch_embeddings.projection.weight" and names[-1] == "classifier.weight"
    assert len(names) == 1 + 2 * 6 + 1 and "vit.embeddings.cls_token" not in names
    w = {names[1]: model.layers[1].weight * np.float32(1.05)}
    assert rel_err(model(x, w), vit_golden["logits"]) > 10 * RTOL  # the check can fail


def test_vit_model_without_head_is_an_encoder(tmp_path, vit_golden):
    """A ``ViTModel`` checkpoint (no prefix, no classifier): outputs the hidden states and their token mean."""
    tensors = {k[len("vit."):]: np.array(v) for k, v in read_safetensors(VIT / "model.safetensors").tensors.items()
               if k.startswith("vit.")}
    save_file(tensors, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    for name in ("config.json", "preprocessor_config.json"):
        shutil.copyfile(VIT / name, tmp_path / name)
    model = load_model(tmp_path / "model.safetensors")
    assert model.task == "encoder"
    hidden = model.outputs(vit_golden["pixel_values"])["last_hidden_state"]
    assert rel_err(hidden, vit_golden["last_hidden_state"]) < RTOL
    np.testing.assert_allclose(model(vit_golden["pixel_values"]), hidden.mean(axis=1), rtol=1e-5, atol=1e-6)


def test_bert_sequence_classifier_matches_transformers(bert_golden):
    model = load_model(BERT_CLS)
    assert model.arch == "bert" and model.task == "classifier" and model.input_spec["shape"] is None
    feeds = {k: bert_golden[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    assert rel_err(model(feeds), bert_golden["logits"]) < RTOL
    assert rel_err(model.forward(feeds, batch_size=1), bert_golden["logits"]) < RTOL
    assert [q.name for q in model.layers][-2:] == ["bert.pooler.dense.weight", "classifier.weight"]
    hidden, pooled = model.encode(feeds["input_ids"], feeds["attention_mask"], feeds["token_type_ids"])
    assert hidden.shape == (3, 10, 32) and pooled.shape == (3, 32)
    no_mask = dict(feeds, attention_mask=np.ones_like(feeds["attention_mask"]))
    assert rel_err(model(no_mask), bert_golden["logits"]) > 10 * RTOL  # the check can fail


def test_folder_and_weight_file_load_the_same_model():
    a, b = load_model(BERT), load_model(BERT / "model.safetensors")
    assert a.graph.to_json() == b.graph.to_json()
    ids = np.array([[5, 7, 9, 0]])
    np.testing.assert_array_equal(a(ids), b(ids, attention_mask=np.array([[1, 1, 1, 1]])))


def test_converted_hf_models_are_bit_identical(tmp_path, vit_golden, bert_golden):
    vit = load_model(VIT)
    again = load_model(save_model(vit, tmp_path / "vit.safetensors"))
    np.testing.assert_array_equal(again(vit_golden["pixel_values"]), vit(vit_golden["pixel_values"]))
    assert again.input_spec == vit.input_spec
    bert = load_model(BERT_CLS)
    feeds = {k: bert_golden[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    np.testing.assert_array_equal(load_model(save_model(bert, tmp_path / "bert.safetensors"))(feeds), bert(feeds))


def test_bad_folders_and_inputs(tmp_path):
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x02")
    with pytest.raises(ModelFileError, match="without model.safetensors.*pickle checkpoints are never read"):
        load_model(tmp_path)
    model = load_model(BERT)
    with pytest.raises(InputError, match="vocabulary size 100"):
        model(np.array([[1, 100]]))
    with pytest.raises(InputError, match="attention_mask holds values other than 0 and 1"):
        model(np.array([[1, 2]]), attention_mask=np.array([[1, 2]]))


def test_cli_info_on_a_folder(cli, tmp_path):
    r = cli("info", str(VIT), "--json")
    assert r.returncode == 0, r.stderr
    d = r.json()
    assert d["arch"] == "vit" and d["task"] == "classifier" and len(d["layers"]) == 14
    assert_one_line_error(cli("info", str(tmp_path)), "without model.safetensors")
