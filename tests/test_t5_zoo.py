"""T5 on a zoo model: the measured response F predicts the Monte Carlo distortion; first order does not."""

from __future__ import annotations

import dataclasses

import pytest

from wkbnoise.evaluation.t5 import t5_results, t5_rows


@pytest.mark.slow
@pytest.mark.statistical
def test_t5_lenet5_all_rates_both_plans():
    """p = 0.001, 0.01, 0.1; correct-only and the WKB greedy plan at 0.5 b/w; 8 trials on 200 test images.

    Tolerance: 4.5 combined standard errors (trial spread of the measurement, jackknife of F over its draws,
    G_l's draws). The same check rejects the first-order model at p = 0.1 (measured/first order ~ 19) and
    the model's own prediction halved on at least one row (the p = 0.01 TAC row; elsewhere heavy-tailed trials
    make the tolerance wider than a factor 2)."""
    results = t5_results(("lenet5",), trials=8, n_images=200, calibration=64, draws=3)
    rows = t5_rows(results)
    assert len(rows) == 6 and all(r.status == "PASS" for r in rows), [dataclasses.asdict(r) for r in rows]
    by = {(r["p_flip"], r["plan"]): r for _, r in results}
    worst = by[(0.1, "correct-only")]
    first = dict(worst, predicted=worst["first_order"], predicted_se=0.0)
    assert t5_rows([("lenet5", first)])[0].status == "FAIL"
    assert worst["measured"] / worst["first_order"] > 5
    halved = [t5_rows([("lenet5", dict(r, predicted=0.5 * r["predicted"]))])[0] for _, r in results]
    assert sum(r.status == "FAIL" for r in halved) >= 1


def test_t5_inputs_hold_calibration_out_of_the_measured_sample():
    """Held-out calibration images are test images outside the measured sample, never one of them."""
    import numpy as np

    from wkbnoise import zoo
    from wkbnoise.errors import InputError
    from wkbnoise.evaluation.t5 import t5_inputs

    images, labels = zoo.test_set()
    flat = {bytes(im.tobytes()): i for i, im in enumerate(images)}
    measured, calib = t5_inputs(200, 128, seed=3)
    m_idx = {flat[im.tobytes()] for im in measured}
    c_idx = {flat[im.tobytes()] for im in calib}
    assert len(m_idx) == 200 and len(c_idx) == 128 and not m_idx & c_idx
    assert np.bincount(labels[sorted(m_idx)], minlength=10).tolist() == [20] * 10  # stratified
    again = t5_inputs(200, 128, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(again, (measured, calib), strict=True))
    _, train = t5_inputs(200, 128, seed=3, calibration_from="training")
    pool = {im.tobytes() for im in zoo.calibration_images()}
    assert all(im.tobytes() in pool for im in train) and not any(im.tobytes() in flat for im in train)
    with pytest.raises(InputError, match="800 test images outside"):
        t5_inputs(200, 801)
    with pytest.raises(InputError, match="calibration_from"):
        t5_inputs(200, 10, calibration_from="test")
