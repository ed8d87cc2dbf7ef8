"""Checkpoints: a forward pass that starts where a layer is first read, from clean values kept once, gives
the whole forward pass's outputs bit for bit; the layer sensitivities measured that way are unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from wkbnoise import InputError, zoo
from wkbnoise.parallel import serial_blas
from wkbnoise.runtime import Checkpoints, base
from wkbnoise.sensitivity import layer_sensitivities

ARCHS = ["lenet5", "resnet20", "mobilenetv2", "vit"]


def _model_and_input(arch, n=24):
    m = zoo.load(arch)
    x, _ = zoo.test_set()
    return m, m.preprocess(x[:n])


def _perturbed(layer, seed):
    rng = np.random.default_rng(seed)
    return layer.weight + np.float32(0.05) * rng.standard_normal(layer.weight.shape).astype(np.float32)


@pytest.mark.parametrize("arch", ARCHS)
def test_resumed_forward_is_the_whole_forward(arch):
    m, x = _model_and_input(arch)
    with serial_blas():  # the same BLAS thread count for the kept values and the whole passes
        cp = m.checkpoints(x, batch_size=10)  # three chunks
        assert isinstance(cp, Checkpoints) and len(cp) == len(x)
        # the first layer reads the input: nothing to keep; every later one is kept
        assert set(cp.kept) == {ly.name for ly in m.layers[1:]}
        assert cp.at(m.layers[0].name).name == m.layers[0].name
        picks = m.layers if arch == "lenet5" else m.layers[1::max(1, len(m.layers) // 5)] + [m.layers[-1]]
        for i, ly in enumerate(picks):
            w = {ly.name: _perturbed(ly, i)}
            whole = m.forward(x, w, batch_size=10)
            np.testing.assert_array_equal(m.forward(cp.at(ly.name), w), whole)
            # the chunks side by side
            np.testing.assert_array_equal(m.forward(cp.at(ly.name), w, threads=2), whole)
            np.testing.assert_array_equal(m.forward(cp.at(ly.name), w), whole)  # the kept values are intact
        np.testing.assert_array_equal(m.forward(cp.at(m.layers[-1].name)), m.forward(x, batch_size=10))


def test_resuming_reads_the_kept_values():
    """Teeth: resuming from values kept with other weights gives other outputs (the pass really starts
    at the checkpoint), and the model refuses it unless the record of those weights is forged."""
    m, x = _model_and_input("resnet20", 12)
    first, later = m.layers[0], m.layers[5]
    other = {first.name: _perturbed(first, 1)}
    with serial_blas():
        cp = m.checkpoints(x, weights=other)
        with pytest.raises(InputError, match="differ from those the checkpoints were made with"):
            m.forward(cp.at(later.name))
        np.testing.assert_array_equal(m.forward(cp.at(later.name), other), m.forward(x, other))
        cp.weights[first.name] = first.weight.copy()  # forged: claims the clean first layer
        assert not np.array_equal(m.forward(cp.at(later.name)), m.forward(x))


def test_memory_bound_keeps_the_last_layers():
    m, x = _model_and_input("resnet20", 16)
    whole = m.checkpoints(x)
    names = [ly.name for ly in m.layers[1:]]

    def unique_bytes(layer_names):
        arrays = {id(a): a for n in layer_names for a in whole.kept[n][0].values.values()}
        return sum(a.nbytes for a in arrays.values())

    # a value live at several layers' checkpoints is copied once: the second conv of a block holds the
    # block's input, which the first conv's checkpoint holds too
    assert whole.nbytes == unique_bytes(names) < sum(whole.kept[n][0].nbytes for n in names)
    budget = unique_bytes(names[-6:])
    cp = m.checkpoints(x, max_bytes=budget)
    assert set(names[-6:]) <= set(cp.kept) and names[0] not in cp.kept and cp.nbytes <= budget
    w = {names[0]: _perturbed(m.layers[1], 0)}  # not kept: the pass starts at the input, in the same chunks
    np.testing.assert_array_equal(m.forward(cp.at(names[0]), w), m.forward(x, w))
    assert not m.checkpoints(x, max_bytes=0).kept


def test_checkpoint_mistakes():
    m, x = _model_and_input("lenet5", 4)
    cp = m.checkpoints(x)
    with pytest.raises(InputError, match="not a quantizable layer"):
        cp.at("nope")
    with pytest.raises(InputError, match="checkpoints.at"):
        m.forward(cp)
    with pytest.raises(InputError, match="another model"):
        zoo.load("lenet5").forward(cp.at(m.layers[1].name))
    with pytest.raises(InputError, match="max_bytes"):
        m.checkpoints(x, max_bytes=-1)
    with pytest.raises(InputError, match="not quantizable layers"):
        m.checkpoints(x, layers=["nope"])


@pytest.mark.parametrize("arch", ["lenet5", "resnet20"])
def test_sensitivities_are_unchanged_by_checkpoints(arch, monkeypatch):
    m, x = _model_and_input(arch, 32)
    fast = layer_sensitivities(m, x, draws=2)
    monkeypatch.setattr(base, "CHECKPOINT_BYTES", 0)  # nothing kept: every pass starts at the input
    whole = layer_sensitivities(m, x, draws=2)
    np.testing.assert_array_equal(fast.G, whole.G)
    np.testing.assert_array_equal(fast.linearity, whole.linearity)


DATA = __import__("pathlib").Path(__file__).parent / "data"


def _token_batch(m, n, seed=0):
    """``n`` random sequences of 3-12 tokens, right-padded to 12."""
    from wkbnoise.text import token_batch

    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 13, n)
    mask = (np.arange(12)[None, :] < lengths[:, None]).astype(np.int64)
    ids = rng.integers(1, int(m.config["vocab_size"]), (n, 12)) * mask
    return token_batch({"input_ids": ids, "attention_mask": mask}, m)


@pytest.mark.parametrize("folder", ["bert_tiny", "bert_cls_tiny"])
def test_token_models_resume_bit_for_bit(folder):
    from wkbnoise.runtime import load_model
    from wkbnoise.text import TokenCheckpoints, token_outputs

    m = load_model(DATA / folder)
    batch = _token_batch(m, 10)
    assert batch.attention_mask.min() == 0  # padded rows: each chunk is cut to its longest sequence
    with serial_blas():
        cps = TokenCheckpoints(m, batch, batch_size=4)  # chunks of 4, 4 and 2 sequences
        assert len(cps.chunks) == 3 and len(cps) == 10
        for i, ly in enumerate(m.layers[1::3]):
            w = {ly.name: _perturbed(ly, i)}
            np.testing.assert_array_equal(cps.at(ly.name).outputs(w), token_outputs(m, batch, w, 4))
        # teeth: the pass really starts at the kept values
        last = m.layers[-1].name
        forged = TokenCheckpoints(m, batch, {m.layers[0].name: _perturbed(m.layers[0], 9)}, 4)
        for cp in forged.chunks:
            cp.weights[m.layers[0].name] = m.layers[0].weight.copy()
        assert not np.array_equal(forged.at(last).outputs(), token_outputs(m, batch, None, 4))


def test_token_sensitivities_are_unchanged_by_checkpoints(monkeypatch):
    from wkbnoise.runtime import load_model

    m = load_model(DATA / "bert_tiny")
    batch = _token_batch(m, 12, seed=1)
    fast = layer_sensitivities(m, batch, draws=2)
    monkeypatch.setattr(base, "CHECKPOINT_BYTES", 0)
    whole = layer_sensitivities(m, batch, draws=2)
    np.testing.assert_array_equal(fast.G, whole.G)
    np.testing.assert_array_equal(fast.linearity, whole.linearity)
