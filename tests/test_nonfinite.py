"""NaN and inf outputs: an error naming the first bad tensor for a clean pass, counted failures in a trial."""

from __future__ import annotations

import numpy as np
import pytest
from standin_models import TwoLayer

from wkbnoise import FlipRates, ModelFileError
from wkbnoise._rng import derive_keys
from wkbnoise.correction import build_lut
from wkbnoise.evaluation.campaign import Evaluator, first_nonfinite, score_outputs
from wkbnoise.faults import flip_codes
from wkbnoise.quant import quantize


class WithParams(TwoLayer):
    """TwoLayer with a ``params`` dict like the runtime's (the bias ``b1`` lives there)."""

    def __init__(self, *args, scale1=1.0, **kw):
        super().__init__(*args, **kw)
        if scale1 != 1.0:
            w1 = (self.layers[0].weight * np.float32(scale1)).astype(np.float32)
            w1.setflags(write=False)
            self.layers[0] = type(self.layers[0])("fc1", w1, w1.size)
        self.params = {"fc1": self.layers[0].weight, "b1": self.b1, "fc2": self.layers[1].weight}


def _x(n=50):
    return np.random.default_rng(0).standard_normal((n, 12)).astype(np.float32)


def test_score_never_reads_a_nan_row_as_a_class():
    z = np.array([[np.nan, 0.0], [0.0, 1.0], [np.inf, 0.0], [2.0, 1.0]])
    labels = np.array([0, 1, 0, 0])
    # argmax would read both non-finite rows as class 0 (= their labels): 4/4; they are failures: 2/4
    assert np.mean(np.argmax(z, axis=1) == labels) == 1.0
    assert score_outputs(z, "accuracy", labels) == 0.5
    assert score_outputs(z, "agreement", ref_pred=labels) == 0.5
    ref = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    assert score_outputs(z, "cosine", ref_out=ref) == pytest.approx((1 + 2 / np.sqrt(5)) / 4)


def test_nan_bias_is_an_error_naming_it():
    model = WithParams(d_in=12, d_hidden=16, d_out=5, seed=1)
    model.b1 = model.b1.copy()
    model.b1[3] = np.nan
    model.params["b1"] = model.b1
    assert first_nonfinite(model, _x()) == "parameter 'b1' (holds 1 non-finite values)"
    with pytest.raises(ModelFileError, match="clean float forward pass.*parameter 'b1'"):
        Evaluator(model, _x(), np.zeros(50, int))


def test_overflow_names_the_first_layer_where_it_appears():
    model = WithParams(d_in=12, d_hidden=16, d_out=5, seed=1, scale1=3e38)  # finite weights, fc1's output overflows
    assert np.isfinite(model.layers[0].weight).all()
    where = first_nonfinite(model, _x())
    assert where.startswith("the output of layer 'fc1'")
    with pytest.raises(ModelFileError, match="layer 'fc1'"):
        Evaluator(model, _x(), np.zeros(50, int))
    # a finite model has nothing to name
    assert first_nonfinite(WithParams(d_in=12, d_hidden=16, d_out=5, seed=1), _x()) is None


def test_faulty_trials_count_failures_and_score_them_wrong():
    """Flips that overflow the forward pass: failures per trial equal a hand-built trial's non-finite rows."""
    model = WithParams(d_in=12, d_hidden=16, d_out=5, seed=1, scale1=6e37)  # clean max |z| 1.9e38: flips overflow some rows
    x = _x(200)
    labels = np.argmax(model(x), axis=1)
    ev = Evaluator(model, x, labels)
    assert np.isfinite(ev.z_int8).all()
    rates = FlipRates.symmetric(0.2, 8)
    res = ev.run(rates, method="none", trials=6, seed=5, point=(1,))
    assert res.failed.sum() > 0
    for t in range(6):
        keys = derive_keys(5, (1, t), 2)
        weights = {}
        for i, ly in enumerate(model.layers):
            qt = quantize(ly.weight, 8)
            weights[ly.name] = build_lut(rates, qt.scale, method="none")[flip_codes(qt.codes, rates, keys[i])]
        with np.errstate(over="ignore", invalid="ignore"):
            z = model(x, weights=weights)
        ok = np.isfinite(z).all(axis=1)
        assert res.failed[t] == np.sum(~ok)
        assert res.accuracy[t] == np.mean(ok & (np.argmax(np.where(ok[:, None], z, 0), axis=1) == labels))
