"""Frozen configuration of a campaign: stored as the HDF5 run's ``config`` attribute and compared on resume."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

from ..allocation import METHODS
from ..errors import InputError
from ..rates import FlipRates

__all__ = ["RateSpec", "ModelSpec", "SweepConfig", "CROSSING_METHODS", "CROSSING_GRID", "budget_id"]

#: methods that have a 95 % crossing (``gaussian`` is a model check of the noise, not a protection)
CROSSING_METHODS = ("none", "correct-only", "uniform-msp", "magnitude", "random", "tac", "tac-bayes",
                    "tac-bayes-gain")


def budget_id(bits_per_weight: float) -> int:
    """Stable integer id of a budget (1e-4 bits per weight resolution), for fault keys and record names."""
    return int(round(float(bits_per_weight) * 10_000))


def _geometric_grid(top: float = 8.0, per_octave: int = 8, octaves: int = 10) -> tuple[float, ...]:
    vals = {0.0} | {round(top * 2.0 ** (-j / per_octave), 4) for j in range(per_octave * octaves + 1)}
    return tuple(sorted(vals))


#: a geometric grid of budgets [bits per weight]: 0 and 8 * 2^(-j/8), j = 0..80 (used by ``design``)
CROSSING_GRID = _geometric_grid()


@dataclass(frozen=True)
class RateSpec:
    """Raw flip rates of a campaign, with a label for tables (``"p=0.1"``, ``"SiO2 4 nm 10 y"``)."""

    label: str
    p_down: tuple
    p_up: tuple

    @classmethod
    def symmetric(cls, p_flip: float, bits: int = 8) -> RateSpec:
        """Every plane flips either way with ``p_flip`` [per bit]."""
        r = FlipRates.symmetric(p_flip, bits)
        return cls(f"p={p_flip:g}", tuple(r.p_down.tolist()), tuple(r.p_up.tolist()))

    @classmethod
    def from_rates(cls, label: str, rates: FlipRates) -> RateSpec:
        """Wrap a :class:`FlipRates` (e.g. from ``memory_flip_rates``)."""
        return cls(label, tuple(rates.p_down.tolist()), tuple(rates.p_up.tolist()))

    def rates(self) -> FlipRates:
        """The :class:`FlipRates`."""
        return FlipRates(self.p_down, self.p_up)

    @property
    def is_symmetric(self) -> bool:
        """True when ``p_down == p_up`` on every plane."""
        return self.p_down == self.p_up


@dataclass(frozen=True)
class ModelSpec:
    """One model of a campaign: a zoo name (``path=None``) or a weight file, and the rates it is run at."""

    name: str
    rates: tuple
    path: str | None = None


@dataclass(frozen=True)
class SweepConfig:
    """Everything that determines a campaign's numbers.

    Attributes
    ----------
    models : tuple of ModelSpec
    methods : tuple of str
        Methods of :data:`wkbnoise.allocation.METHODS` evaluated on the budget grid.
    budgets : tuple of float
        Budget grid [protected data bits per weight].
    trials : int
        Monte Carlo trials per point (the first look of the crossing search too).
    max_trials : int
        Trial cap of the crossing search per point; 0 means ``4 * trials``.
    seed : int
        Root seed of every fault key.
    bits : int
        Quantization bits B.
    n_images : int
        Test images used: a seeded random sample, stratified by label (all of them when equal to their number).
    calibration : int
        Unlabeled calibration images for ``G_l`` (a seeded random sample of the training split's).
    draws : int
        Perturbations per layer for ``G_l``.
    crossing : tuple of str
        Methods whose smallest budget judged to reach ``target`` x the INT-B metric is located on their path.
    target : float
        Fraction of the clean INT-B metric to reach (0.95).
    metric : str or None
        ``accuracy`` (labels), ``agreement`` or ``cosine``; ``None`` picks by the presence of labels.
    inputs, labels : str or None
        User input/label files (safetensors); ``None`` uses the bundled MNIST test set.
    """

    models: tuple
    methods: tuple = ("none", "correct-only", "uniform-msp", "magnitude", "random", "tac", "tac-bayes",
                      "tac-bayes-gain", "gaussian")
    budgets: tuple = (0.25, 0.5, 1.0, 2.0)
    trials: int = 30
    max_trials: int = 0
    seed: int = 0
    bits: int = 8
    n_images: int = 1000
    calibration: int = 256
    draws: int = 4
    crossing: tuple = CROSSING_METHODS
    target: float = 0.95
    metric: str | None = None
    inputs: str | None = None
    labels: str | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for m in (*self.methods, *self.crossing):
            if m not in METHODS:
                raise InputError(f"method={m!r} is not known. Use one of {', '.join(METHODS)}.")
        for b in self.budgets:
            if not isinstance(b, int | float) or not math.isfinite(b) or b < 0 or b > self.bits:
                raise InputError(f"budget={b!r} bits per weight must be a number in 0..{self.bits}.")
        if self.trials < 1:
            raise InputError(f"trials={self.trials!r} must be >= 1.")
        if self.max_trials == 0:
            object.__setattr__(self, "max_trials", 4 * self.trials)
        if self.max_trials < self.trials:
            raise InputError(f"max_trials={self.max_trials!r} must be >= trials={self.trials!r}.")
        if "gaussian" in self.crossing:
            raise InputError("method 'gaussian' has no crossing: it checks the noise model, it protects nothing.")
        if not 0 < self.target <= 1:
            raise InputError(f"target={self.target!r} must be in (0, 1].")

    def to_json(self) -> str:
        """Canonical JSON (sorted keys): what the run file stores and resume compares."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> SweepConfig:
        """Inverse of :meth:`to_json`."""
        d = json.loads(text)
        d["models"] = tuple(ModelSpec(m["name"], tuple(RateSpec(r["label"], tuple(r["p_down"]), tuple(r["p_up"]))
                                                         for r in m["rates"]), m["path"]) for m in d["models"])
        for k in ("methods", "budgets", "crossing"):
            d[k] = tuple(d[k])
        return cls(**d)
