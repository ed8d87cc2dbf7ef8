"""T5 rows for the ``validate`` report: predicted vs measured output distortion on the zoo models.

Predicted (:mod:`wkbnoise.distortion`): ``D = F(S)``, ``S = sum_l s_l^2 G_l V_l(m_l)`` the first-order
distortion with ``G_l`` from unlabeled calibration images (forward perturbation) and ``F`` the network's
response measured with real bit flips on the same calibration images, at the same rates, along the WKB
greedy path. Measured: the mean over Monte Carlo trials of ``mean_x ||z(W~) - z(W_q)||^2`` on the *test*
images, through the real bit flips and lookup tables, with other fault keys.

Calibration inputs (:func:`t5_inputs`): by default unlabeled test images *outside* the measured sample, so
that prediction and measurement see the same distribution but never the same inputs. The zoo's own
calibration images come from its training split, on which an overfitted network is less sensitive than on
unseen images (the ViT's ``G_l`` are 1.0-2.0x larger on test images); ``calibration_from="training"`` uses
them instead, and measures that shift rather than the theory.

Plans: ``correct-only`` (nothing protected) and ``tac`` (the ``tac`` plan at :data:`T5_TAC_BUDGET` bits per
weight, which is generally not one of the plans ``F`` was measured at).

Tolerance: ``z`` combined standard errors, the Monte Carlo one (trial-to-trial spread / sqrt(trials)) and
the prediction's (``F``'s draws, and the ``G_l`` draws propagated).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..allocation import plan_for, plane_variance, predicted_distortion
from ..rates import FlipRates
from ..sensitivity import layer_sensitivities
from .campaign import Evaluator

__all__ = ["t5_inputs", "t5_measure", "t5_rows", "t5_results", "t5_producer", "T5_P", "T5_TAC_BUDGET",
           "CALIBRATION_FROM"]

#: flip rates of the T5 rows; the ViT is evaluated at 0.05 instead of 0.1 (the protocol's rate for it)
T5_P = {"default": (0.001, 0.01, 0.1), "vit": (0.001, 0.01, 0.05)}
#: budget of the TAC plan of the T5 rows [bits per weight]
T5_TAC_BUDGET = 0.5
#: where :func:`t5_inputs` takes the calibration images from
CALIBRATION_FROM = ("held-out", "training")


def t5_inputs(n_images: int, calibration: int, *, seed: int = 0, calibration_from: str = "held-out"):
    """The measured test images and the calibration images of the T5 rows on the zoo.

    Parameters
    ----------
    n_images : int
        Test images measured: a seeded random sample of the bundled 1,000, stratified by label.
    calibration : int
        Calibration images (their labels are never read).
    seed : int
        Root seed of both samples.
    calibration_from : {"held-out", "training"}
        ``"held-out"``: a seeded random sample of the test images *not* in the measured sample (at most
        ``1000 - n_images``); ``"training"``: of the zoo's calibration images from the training split.

    Returns
    -------
    images : ndarray of uint8, shape (n_images, 1, 28, 28)
    calib : ndarray of uint8, shape (calibration, 1, 28, 28)
    """
    from .. import zoo
    from ..errors import InputError
    from .sampling import sample_indices

    if calibration_from not in CALIBRATION_FROM:
        raise InputError(f"calibration_from={calibration_from!r}: use one of {', '.join(CALIBRATION_FROM)}.")
    images, labels = zoo.test_set()
    idx = sample_indices(len(images), n_images, labels=labels, seed=seed)
    if calibration_from == "training":
        pool = zoo.calibration_images()
        source = "the zoo's calibration set"
    else:
        pool = np.delete(images, idx, axis=0)
        source = f"the {len(pool)} test images outside the measured sample"
    calib = pool[sample_indices(len(pool), calibration, seed=seed, what="calibration", source=source)]
    return images[idx], calib


def t5_measure(model, images, calibration, p_flip: float, *, trials: int = 20, draws: int = 4, seed: int = 0,
               bits: int = 8, plan=None, plan_name: str | None = None, evaluator=None, sensitivities=None,
               response=None, levels: int = 4, response_draws: int = 4) -> dict:
    """Predicted and measured distortion of one model at symmetric ``p_flip`` (correct-only, or ``plan``).

    Parameters
    ----------
    plan : dict or "tac", optional
        Protected top planes per layer; ``"tac"`` takes the plan of method ``tac`` at :data:`T5_TAC_BUDGET`
        (the longest prefix of its nested WKB greedy path that fits, as ``eval`` runs it).
    response : ResponseCurve, optional
        ``F`` at these rates; measured on ``calibration`` when not given.

    Returns
    -------
    dict
        ``predicted``, ``predicted_se``, ``first_order`` (``S``), ``measured``, ``measured_se`` [output^2],
        per-trial ``distortion``, ``plan`` (its name) and ``response`` (the curve used).
    """
    from ..distortion import fit_response

    ev = evaluator or Evaluator(model, images, None, bits=bits)
    x_cal = model.preprocess(calibration) if np.asarray(calibration).dtype == np.uint8 else calibration
    sens = sensitivities or layer_sensitivities(model, x_cal, base_weights=ev.int8_weights, draws=draws, seed=seed)
    rates = FlipRates.symmetric(p_flip, bits)
    stats = ev.layer_stats(rates, sens.as_dict())
    if isinstance(plan, str):
        plan_name = plan_name or plan
        plan = plan_for("tac", stats, T5_TAC_BUDGET)
    plan = plan or {}
    plan_name = plan_name or ("tac" if any(plan.values()) else "correct-only")
    if response is None:
        response = fit_response(model, x_cal, ev.quantized, stats, levels=levels, draws=response_draws, seed=seed)
    s = predicted_distortion(stats, plan)
    pred = float(response(s))
    se_terms = [(response.relative_se(s) * pred) ** 2]
    ratio = pred / s if s > 0 else 1.0
    for st, g_se in zip(stats, sens.G_se, strict=True):
        v = float(plane_variance(st.rates, st.p_one)[: st.bits - int(plan.get(st.name, 0))].sum())
        se_terms.append((ratio * st.scale**2 * v * (g_se if np.isfinite(g_se) else 0.0)) ** 2)
    res = ev.run(rates, method="correct-only" if not any(plan.values()) else "tac", plan=plan, trials=trials,
                 seed=seed, point=(int(round(p_flip * 1e6)),))
    d = res.distortion
    return {"p_flip": p_flip, "plan": plan_name, "predicted": pred, "predicted_se": math.sqrt(math.fsum(se_terms)),
            "first_order": s, "measured": math.fsum(d.tolist()) / len(d),
            "measured_se": float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else 0.0,
            "distortion": d, "trials": trials, "response": response}


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
        note = f"measured/predicted = {r['measured'] / r['predicted']:.3f}" if r["predicted"] > 0 else ""
        if r.get("first_order", 0) > 0:
            fo = r["first_order"]
            note += f"; first order {fo:.4g} (measured/first order = {r['measured'] / fo:.3f})"
        rows.append(Row(f"T5 {name}", f"E||z~ - z||^2 at p={r['p_flip']:g}, {r.get('plan', 'correct-only')}, "
                        f"{r['trials']} trials", float(r["predicted"]), float(r["measured"]), float(tol),
                        "PASS" if ok else "FAIL", note))
    return rows


def t5_results(models: Sequence[str] = ("lenet5", "vgg", "resnet20", "mobilenetv2", "vit"),
               p_values: Sequence[float] | None = None, *, trials: int = 10, n_images: int = 200,
               calibration: int = 128, draws: int = 3, seed: int = 0, plans: Sequence[str] = ("correct-only", "tac"),
               calibration_from: str = "held-out"):
    """:func:`t5_measure` on zoo models: ``[(model name, result dict), ...]``.

    ``p_values`` defaults to :data:`T5_P` (per model). The inputs are those of :func:`t5_inputs`: ``n_images``
    test images (stratified) and ``calibration`` unlabeled images held out from them (or, with
    ``calibration_from="training"``, from the training split); one ``F`` per model and rate serves both plans.
    """
    from .. import zoo

    images, calib = t5_inputs(n_images, calibration, seed=seed, calibration_from=calibration_from)
    out = []
    for name in models:
        model = zoo.load(name)
        ev = Evaluator(model, images, None, bits=8)
        sens = layer_sensitivities(model, model.preprocess(calib), base_weights=ev.int8_weights, draws=draws, seed=seed)
        for p in p_values or T5_P.get(name, T5_P["default"]):
            response = None
            for plan in plans:
                r = t5_measure(model, None, calib, p, trials=trials, seed=seed, evaluator=ev, sensitivities=sens,
                               plan="tac" if plan == "tac" else None, response=response)
                response = r["response"]
                out.append((name, r))
    return out


def t5_producer(models: Sequence[str] = ("lenet5", "vgg", "resnet20", "mobilenetv2", "vit"),
                p_values: Sequence[float] | None = None, **kwargs):
    """A row producer for :func:`wkbnoise.evaluation.validate.run_validation`: T5 on the zoo models.

    Keyword arguments go to :func:`t5_results`. Usage: ``run_validation(config, producers=[*PRODUCERS,
    t5_producer()])``.
    """

    def produce(ctx):
        return t5_rows(t5_results(models, p_values, **kwargs))

    return produce
