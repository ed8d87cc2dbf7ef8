"""The campaign engine: per-trial keys, plumbing against a hand-built trial, theory T5 on a linear stand-in."""

from __future__ import annotations

import numpy as np
import pytest
from standin_models import TwoLayer

from wkbnoise import FlipRates, InputError, threads
from wkbnoise._rng import derive_keys
from wkbnoise.allocation import residual_variance
from wkbnoise.correction import build_lut
from wkbnoise.evaluation.campaign import Evaluator, monte_carlo_accuracy
from wkbnoise.faults import flip_codes
from wkbnoise.quant import quantize


def _data(n=300, seed=0, d_in=12):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d_in)).astype(np.float32)
    return x


@pytest.fixture(scope="module")
def setup():
    model = TwoLayer(d_in=12, d_hidden=32, d_out=5, relu=True, seed=3)
    x = _data()
    labels = np.argmax(model(x), axis=1)
    return model, x, labels


def test_trial_equals_hand_built_trial(setup):
    """Trial t of a point == flip_codes with derive_keys(seed, (*point, t)), the method's LUT, one forward pass."""
    model, x, labels = setup
    rates = FlipRates.uniform(0.05, 0.01, 8)
    plan = {"fc1": 2, "fc2": 0}
    ev = Evaluator(model, x, labels)
    res = ev.run(rates, method="tac", plan=plan, trials=3, seed=11, point=(4, 5))
    for t in range(3):
        keys = derive_keys(11, (4, 5, t), 2)
        weights = {}
        for i, ly in enumerate(model.layers):
            qt = quantize(ly.weight, 8)
            r = rates.protect_top(plan[ly.name])
            lut = build_lut(r, qt.scale, method="per-plane")
            weights[ly.name] = lut[flip_codes(qt.codes, r, keys[i])]
        z = model(x, weights=weights)
        assert res.accuracy[t] == np.mean(np.argmax(z, axis=1) == labels)
        zq = model(x, weights=ev.int8_weights)
        assert res.distortion[t] == pytest.approx(np.mean(np.sum((z.astype(np.float64) - zq) ** 2, axis=1)), rel=1e-6)


def test_keys_depend_on_point_and_trial_only(setup):
    model, x, labels = setup
    rates = FlipRates.symmetric(0.02)
    ev = Evaluator(model, x, labels)
    a = ev.run(rates, method="correct-only", trials=4, seed=1, point=(0, 1)).accuracy
    ev.run(rates, method="none", trials=2, seed=1, point=(0, 2))  # another point in between
    b = ev.run(rates, method="correct-only", trials=2, seed=1, point=(0, 1)).accuracy
    np.testing.assert_array_equal(a[:2], b)
    with threads(1):
        c = ev.run(rates, method="correct-only", trials=4, seed=1, point=(0, 1)).accuracy
    np.testing.assert_array_equal(a, c)
    d = ev.run(rates, method="correct-only", trials=4, seed=1, point=(0, 9)).accuracy
    assert not np.array_equal(a, d)
    np.testing.assert_array_equal(monte_carlo_accuracy(model, x, labels, rates, method="correct-only", trials=4,
                                                       seed=1, point=(0, 1)), a)


def test_no_flips_gives_int8(setup):
    model, x, labels = setup
    ev = Evaluator(model, x, labels)
    calls = model.calls
    res = ev.run(FlipRates.symmetric(0.1), method="uniform-msp", plan={"fc1": 8, "fc2": 8}, trials=5)
    assert model.calls == calls + 1  # evaluated once, not per trial
    np.testing.assert_array_equal(res.accuracy, ev.int8_score)
    np.testing.assert_array_equal(res.distortion, 0.0)


@pytest.mark.statistical
@pytest.mark.parametrize("method", ["correct-only", "gaussian"])
def test_t5_exact_on_linear_model(method):
    """Linear in fc1: E||z~ - z_q||^2 = s^2 G V exactly for unbiased independent noise on fc1 alone.

    (Noise on both layers adds the second-order cross term dW2 dW1 x, which first-order T5 leaves out.)"""
    model = TwoLayer(d_in=12, d_hidden=16, d_out=5, relu=False, seed=2)
    x = _data(200, 1)
    p = FlipRates.symmetric(0.1)
    rates = {"fc1": p, "fc2": FlipRates.symmetric(0.0)}
    ev = Evaluator(model, x, None)
    res = ev.run(rates, method=method, trials=200, seed=5)
    w1 = ev.int8_weights["fc1"].astype(np.float64)
    w2 = ev.int8_weights["fc2"].astype(np.float64)
    h = x.astype(np.float64) @ w1.T + model.b1
    assert h.shape[1] == 16
    g = {"fc1": np.sum(w2**2) * np.mean(np.sum(x.astype(np.float64) ** 2, axis=1))}
    # per-entry variance with the layer's own bit balance (exact for symmetric rates anyway)
    pred = sum(ev.scale(n) ** 2 * g[n] * residual_variance(p, 0, ev.p_one[n]) for n in g)
    se = res.distortion.std(ddof=1) / np.sqrt(len(res.distortion))
    assert abs(res.distortion.mean() - pred) <= 4.5 * se, (res.distortion.mean(), pred, se)
    wrong = pred * (1 - 2 * 0.1) ** 2  # forgetting the 1/a^2 of the correction
    assert abs(res.distortion.mean() - wrong) > 4.5 * se


def test_unlabeled_metric_is_agreement_with_the_int8_model(setup):
    """Without labels: top-1 agreement with the clean INT8 model (1 for itself; the float model's is counted)."""
    model, x, _ = setup
    ev = Evaluator(model, x, None)
    assert ev.metric == "agreement" and ev.int8_score == 1.0
    w8 = {ly.name: quantize(np.asarray(ly.weight), 8).dequantize() for ly in model.layers}
    ref = np.argmax(model(x, weights=w8), axis=1)
    assert ev.clean_score == np.mean(np.argmax(model(x), axis=1) == ref)
    ev2 = Evaluator(model, x, None, metric="cosine")
    assert ev2.int8_score == pytest.approx(1.0, abs=1e-12)
    a, b = model(x).astype(np.float64), model(x, weights=w8).astype(np.float64)
    cos = np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert ev2.clean_score == pytest.approx(cos.mean(), rel=1e-12) and ev2.clean_score < 1.0
    assert ev2.goal(0.95) == 0.95 and ev.goal(0.95) == 0.95
    labelled = Evaluator(model, x, np.argmax(model(x), axis=1))
    assert labelled.goal(0.95) == pytest.approx(0.95 * labelled.int8_score) and labelled.int8_score < 1.0


def test_bad_inputs(setup):
    model, x, labels = setup
    ev = Evaluator(model, x, labels)
    with pytest.raises(InputError, match="method"):
        ev.run(FlipRates.symmetric(0.1), method="magic")
    with pytest.raises(InputError, match="plan"):
        ev.run(FlipRates.symmetric(0.1), plan={"nope": 1})
    with pytest.raises(InputError, match="trials"):
        ev.run(FlipRates.symmetric(0.1), trials=0)
    with pytest.raises(InputError, match="labels"):
        Evaluator(model, x, None, metric="accuracy")


def test_real_code_trial_equals_hand_built_trial(setup):
    """With a real code, trial t == read_stored (codewords flipped and decoded) + the residual-rate LUT."""
    from reference import flip_protected_ref, syndrome_decoder_ref

    from wkbnoise.codes import real_code
    from wkbnoise.ecc import protected_rates

    model, x, labels = setup
    rates = FlipRates.uniform(0.05, 0.01, 8)
    plan = {"fc1": 3, "fc2": 1}
    code = real_code("secded-39-32")
    table = syndrome_decoder_ref(code.parity, code.t)
    ev = Evaluator(model, x, labels)
    res = ev.run(rates, method="tac", plan=plan, trials=2, seed=5, point=(1,), code="secded-39-32")
    for t in range(2):
        keys = derive_keys(5, (1, t), 2)
        weights = {}
        for i, ly in enumerate(model.layers):
            qt = quantize(ly.weight, 8)
            m = plan[ly.name]
            low = flip_codes(qt.codes, rates.protect_top(m), keys[i])
            prot = flip_protected_ref(qt.codes, rates.p_down, rates.p_up, m, code.parity, table, int(keys[i]))
            top = ((1 << m) - 1) << (8 - m)
            read = (low & ~np.uint8(top)) | (prot & np.uint8(top))
            lut = build_lut(protected_rates(rates, m, "secded-39-32"), qt.scale, method="per-plane")
            weights[ly.name] = lut[read]
        z = model(x, weights=weights)
        assert res.accuracy[t] == np.mean(np.argmax(z, axis=1) == labels)
    ideal = ev.run(rates, method="tac", plan=plan, trials=2, seed=5, point=(1,))
    assert not np.array_equal(ideal.distortion, res.distortion)       # the protected planes do err now
    with pytest.raises(InputError, match="no decoder table"):
        ev.run(rates, method="tac", plan=plan, trials=1, code="bch-32-t2")
