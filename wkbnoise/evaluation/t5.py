"""T5 rows for the ``validate`` report: predicted vs measured output distortion on the zoo models.

Theory (spec/theory.md T5): after the per-plane mean correction, ``E ||z(W~) - z(W_q)||^2 ~= D =
sum_l s_l^2 G_l V_l`` with ``G_l`` from unlabeled calibration images (forward perturbation) and ``V_l``
the residual variance of the layer's planes. Measured: the mean over Monte Carlo trials of the same
squared distance on the test images, through the real bit flips and lookup tables.

Tolerance: ``z`` combined standard errors, the Monte Carlo one (trial-to-trial spread / sqrt(trials)) and
the prediction's (``G_l`` standard errors over the perturbation draws, propagated). T5 is a first-order
statement; where the noise is large enough for the network's curvature to matter (moderate ``p``, no
protection) the row can fail, and that is a finding, not a bug: the report shows the measured ratio.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..allocation import plane_variance, predicted_distortion
from ..rates import FlipRates
from ..sensitivity import layer_sensitivities
from .campaign import Evaluator

__all__ = ["t5_measure", "t5_rows", "t5_producer"]


def t5_measure(model, images, calibration, p_flip: float, *, trials: int = 20, draws: int = 4, seed: int = 0,
               bits: int = 8, plan=None, evaluator=None, sensitivities=None) -> dict:
    """Predicted and measured distortion of one model at symmetric ``p_flip`` (correct-only, or ``plan``).

    Returns
    -------
    dict
        ``predicted``, ``predicted_se``, ``measured``, ``measured_se`` [output^2], and per-trial ``distortion``.
    """
    ev = evaluator or Evaluator(model, images, None, bits=bits)
    x_cal = model.preprocess(calibration) if np.asarray(calibration).dtype == np.uint8 else calibration
    sens = sensitivities or layer_sensitivities(model, x_cal, base_weights=ev.int8_weights, draws=draws, seed=seed)
    rates = FlipRates.symmetric(p_flip, bits)
    G = sens.as_dict()
    stats = ev.layer_stats(rates, G)
    plan = plan or {}
    pred = predicted_distortion(stats, plan)
    se_terms = []
    for s, g_se in zip(stats, sens.G_se, strict=True):
        v = float(plane_variance(s.rates, s.p_one)[: s.bits - int(plan.get(s.name, 0))].sum())
        se_terms.append((s.scale**2 * v * (g_se if np.isfinite(g_se) else 0.0)) ** 2)
    res = ev.run(rates, method="correct-only" if not plan else "tac", plan=plan, trials=trials, seed=seed,
                 point=(int(round(p_flip * 1e6)),))
    d = res.distortion
    return {"p_flip": p_flip, "predicted": pred, "predicted_se": math.sqrt(sum(se_terms)),
            "measured": float(d.mean()), "measured_se": float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else 0.0,
            "distortion": d, "trials": trials}


def t5_rows(results: Sequence[tuple[str, dict]], z: float = 4.5):
    """Validation rows (``wkbnoise.evaluation.validate.Row``) from :func:`t5_measure` results.

    Parameters
    ----------
    results : sequence of (model name, t5_measure dict)
    z : float
        Standard errors in the tolerance.
    """
    from .validate import Row

    rows = []
    for name, r in results:
        tol = z * math.hypot(r["measured_se"], r["predicted_se"])
        ok = abs(r["measured"] - r["predicted"]) <= tol
        rows.append(Row(f"T5 {name}", f"E||z~ - z||^2 at p={r['p_flip']:g}, correct-only, {r['trials']} trials",
                        float(r["predicted"]), float(r["measured"]), float(tol), "PASS" if ok else "FAIL",
                        f"measured/predicted = {r['measured'] / r['predicted']:.3f}" if r["predicted"] > 0 else ""))
    return rows


def t5_producer(models: Sequence[str] = ("lenet5", "vgg", "resnet20", "mobilenetv2", "vit"),
                p_values: Sequence[float] = (0.001, 0.01), *, trials: int = 20, n_images: int = 500,
                calibration: int = 128, draws: int = 4, seed: int = 0):
    """A row producer for :func:`wkbnoise.evaluation.validate.run_validation`: T5 on the zoo models.

    Usage: ``run_validation(config, producers=[*PRODUCERS, t5_producer()])``.
    """

    def produce(ctx):
        from .. import zoo

        images, _ = zoo.test_set()
        calib = zoo.calibration_images()[:calibration]
        out = []
        for name in models:
            model = zoo.load(name)
            ev = Evaluator(model, images[:n_images], None, bits=8)
            sens = layer_sensitivities(model, model.preprocess(calib), base_weights=ev.int8_weights, draws=draws,
                                       seed=seed)
            for p in p_values:
                out.append((name, t5_measure(model, None, calib, p, trials=trials, seed=seed, evaluator=ev,
                                             sensitivities=sens)))
        return t5_rows(out)

    return produce
