"""The settings of ``eval`` (quick and full) and ``reproduce``: the paper's evaluation protocol made concrete.

The full protocol: INT8 per tensor, two's complement, symmetric flips at ``p = 0.10`` (CNNs) and
``0.05`` (transformers), every method of theory section 5 at 0.25 / 0.5 / 1 / 2 bits per weight, 30 trials
on the 1,000 test images, and the 95 % crossing of every method on its nested budget path, each judged
point extended by 30 trials at a time up to 120 until its interval clears the target.

The quick forms cut trials, images (a stratified random sample), calibration and the grid so that the
whole zoo fits in minutes on two cores; they say so in their output.
"""

from __future__ import annotations

from ..errors import InputError
from .config import CROSSING_METHODS, ModelSpec, RateSpec, SweepConfig

__all__ = ["paper_p_flip", "QUICK_EVAL", "FULL", "QUICK_REPRODUCE", "eval_config", "describe"]

ALL_METHODS = ("none", "correct-only", "uniform-msp", "magnitude", "random", "tac", "tac-bayes",
               "tac-bayes-gain", "gaussian")

#: ``eval`` with no FILE and no --trials/--images: the zoo in a few minutes on 2 cores
QUICK_EVAL = {"trials": 5, "max_trials": 20, "n_images": 200, "calibration": 64, "draws": 2, "budgets": (0.25, 1.0),
              "methods": ("none", "correct-only", "uniform-msp", "magnitude", "tac", "tac-bayes", "tac-bayes-gain")}
#: the paper protocol
FULL = {"trials": 30, "max_trials": 120, "n_images": 1000, "calibration": 256, "draws": 4, "budgets": (0.25, 0.5, 1.0, 2.0),
        "methods": ALL_METHODS}
#: ``reproduce --quick``
QUICK_REPRODUCE = {"trials": 10, "max_trials": 40, "n_images": 500, "calibration": 128, "draws": 3, "budgets": (0.25, 0.5, 1.0, 2.0),
                   "methods": ALL_METHODS}


def paper_p_flip(arch: str) -> float:
    """The paper's default flip rate: 0.05 for transformer encoders (vit, bert), 0.10 for CNNs."""
    return 0.05 if arch in ("vit", "bert") else 0.10


def eval_config(models, *, settings: dict, rates=None, methods=None, budgets=None, trials=None, n_images=None,
                seed: int = 0, bits: int = 8, metric=None, inputs=None, labels=None, crossing=None,
                code: str = "ideal") -> SweepConfig:
    """A :class:`SweepConfig` from ``settings`` (one of the dicts above) and the user's overrides.

    Parameters
    ----------
    models : list of (name, path or None, arch)
        Zoo models (path None) or weight files.
    rates : RateSpec, optional
        Rates for every model; default the paper's per-architecture ``p_flip``.
    code : str
        ``ideal`` (protected planes never err) or a real code whose codewords are flipped and decoded
        (kept in ``SweepConfig.extra["code"]``, absent for ``ideal``).
    crossing : sequence of str, optional
        Methods whose 95 % crossing is located; default every method run (but ``gaussian``), plus
        ``uniform-msp`` and ``tac`` (the ratio ``C_U / C`` needs them).
    """
    specs = []
    for name, path, arch in models:
        r = rates if rates is not None else RateSpec.symmetric(paper_p_flip(arch), bits)
        specs.append(ModelSpec(name, (r,), path))
    methods = tuple(methods) if methods else settings["methods"]
    budgets = tuple(float(b) for b in budgets) if budgets else settings["budgets"]
    if not methods:
        raise InputError("--methods is empty: give at least one method.")
    if crossing is None:
        crossing = [m for m in CROSSING_METHODS if m in methods or m in ("uniform-msp", "tac")]
    n_trials = int(trials or settings["trials"])
    cap = settings.get("max_trials", 4 * n_trials) if trials is None else 4 * n_trials
    return SweepConfig(models=tuple(specs), methods=methods, budgets=budgets,
                       trials=n_trials, max_trials=cap, seed=seed, bits=bits,
                       n_images=int(n_images or settings["n_images"]), calibration=settings["calibration"],
                       draws=settings["draws"], crossing=tuple(crossing), metric=metric, inputs=inputs, labels=labels,
                       extra={} if code == "ideal" else {"code": code})


def describe(config: SweepConfig, quick: bool) -> str:
    """One line saying what the run does (and that a quick form is quick)."""
    what = (f"{config.trials} trials x {config.n_images} images (stratified random sample) per point "
            f"(up to {config.max_trials} trials where the crossing search needs them), "
            f"budgets {', '.join(f'{b:g}' for b in config.budgets)} "
            f"bits/weight, G_l from {config.calibration} unlabeled calibration images ({config.draws} draws)")
    if quick:
        return (f"quick form: {what}. The paper protocol is 30 trials x 1000 images at 0.25/0.5/1/2 bits/weight: "
                "run `python -m wkbnoise eval --trials 30 --images 1000` or `python -m wkbnoise reproduce`.")
    return what
