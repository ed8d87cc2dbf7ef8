"""The 95 % crossing of a method on its nested budget path, judged point by point with a sequential rule.

A point is *judged* by adding Monte Carlo trials until the 95 % interval of its mean (Student-t on the
trial means, clipped to the metric's range) lies wholly above or wholly below the target, or a trial cap
is reached (then the point stays *undecided*). The crossing ``C`` is the smallest budget judged above; its
*bracket* is the largest smaller budget judged below. Every judged point counts, including the budget-grid
points measured before the search: no point is skipped on the assumption that accuracy rises with budget,
and a larger budget judged below ``C`` is reported as such.

The search itself halves the gap between ``C`` and the largest smaller point judged so far (below or
undecided) until they are neighbours on the path, then, if undecided points sit just below ``C``, halves
the gap below them until a point judged below is their neighbour; it measures about ``log2`` of the
path's length points.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

__all__ = ["INTERVAL_METHOD", "interval", "verdict", "Judged", "CrossingResult", "find_crossing"]

#: how every interval of this package is computed (named on every report)
INTERVAL_METHOD = "Student-t on the trial means, clipped to the metric's range"


def interval(x, *, level: float = 0.95, bounds: tuple[float, float] = (0.0, 1.0)) -> tuple[float, float, float]:
    """Mean and two-sided ``level`` Student-t interval of the mean of the trial values ``x``, clipped to ``bounds``.

    With one trial nothing is known about the spread: the interval is the whole of ``bounds``.

    Returns
    -------
    (mean, lo, hi) : tuple of float
        ``bounds[0] <= lo <= mean <= hi <= bounds[1]`` for values inside ``bounds``.
    """
    from scipy import special  # stdtrit is what scipy.stats.t.ppf calls, without importing scipy.stats (0.4 s)

    x = np.asarray(x, dtype=np.float64)
    m = float(x.mean())
    if x.size < 2:
        return m, float(bounds[0]), float(bounds[1])
    h = float(special.stdtrit(x.size - 1, 0.5 + level / 2) * x.std(ddof=1) / math.sqrt(x.size))
    return m, max(float(bounds[0]), m - h), min(float(bounds[1]), m + h)


def verdict(x, goal: float, *, bounds: tuple[float, float] = (0.0, 1.0)) -> str | None:
    """``"above"`` when the 95 % interval of the mean of ``x`` lies wholly at or above ``goal``, ``"below"``
    when wholly below it, else ``None``."""
    _, lo, hi = interval(x, bounds=bounds)
    if lo >= goal:
        return "above"
    if hi < goal:
        return "below"
    return None


@dataclass(frozen=True)
class Judged:
    """One judged point: its path index, verdict (``above``/``below``/``undecided``) and trial values' summary."""

    k: int
    verdict: str
    trials: int
    mean: float
    lo: float
    hi: float


@dataclass
class CrossingResult:
    """The outcome of :func:`find_crossing`.

    Attributes
    ----------
    c : int or None
        Path index of the smallest point judged above (None: no point judged above).
    bracket : int or None
        Largest index below ``c`` judged below (None: none).
    points : dict of int to Judged
        Every judged point.
    """

    c: int | None
    bracket: int | None
    points: dict = field(default_factory=dict)

    @property
    def undecided(self) -> list[int]:
        """Indices left undecided at the trial cap."""
        return sorted(k for k, p in self.points.items() if p.verdict == "undecided")

    @property
    def non_monotone(self) -> list[int]:
        """Indices above ``c`` judged below: measured accuracy that fell as the budget grew."""
        if self.c is None:
            return []
        return sorted(k for k, p in self.points.items() if k > self.c and p.verdict == "below")


def find_crossing(measure: Callable[[int, int], np.ndarray], n_points: int, goal: float, *, start: int,
                  batch: int | None = None, cap: int, measured: Iterable[int] = (),
                  bounds: tuple[float, float] = (0.0, 1.0)) -> CrossingResult:
    """Locate the smallest point of a path whose mean metric is judged above ``goal``.

    Parameters
    ----------
    measure : callable
        ``measure(k, n)`` -> the trial values of point ``k`` after making sure it has at least ``n``
        trials (it may return more, e.g. trials measured earlier; all of them are used).
    n_points : int
        Points on the path, ``0 .. n_points - 1`` in increasing budget.
    goal : float
        The target mean.
    start : int
        Trials of a first look at a point.
    batch : int, optional
        Trials added per round at an undecided point (default ``start``).
    cap : int
        Most trials per point; a point still undecided there stays undecided.
    measured : iterable of int
        Points already measured (the budget grid): judged first, so that they count.
    bounds : (float, float)
        Range of the metric (clips the intervals).
    """
    batch = int(batch or start)
    cap = max(int(cap), int(start))
    points: dict[int, Judged] = {}

    def judge(k: int) -> Judged:
        x = np.asarray(measure(k, start), dtype=np.float64)
        v = verdict(x, goal, bounds=bounds)
        while v is None and x.size < cap:
            x = np.asarray(measure(k, min(cap, x.size + batch)), dtype=np.float64)
            v = verdict(x, goal, bounds=bounds)
        mean, lo, hi = interval(x, bounds=bounds)
        points[k] = Judged(int(k), v or "undecided", int(x.size), mean, lo, hi)
        return points[k]

    for k in sorted(set(int(k) for k in measured)):
        judge(k)
    above = [k for k, p in points.items() if p.verdict == "above"]
    if not above and (n_points - 1) not in points and judge(n_points - 1).verdict != "above":
        return _result(None, points)
    if not any(p.verdict == "above" for p in points.values()):
        return _result(None, points)
    while True:
        c = min(k for k, p in points.items() if p.verdict == "above")
        lo = max((k for k in points if k < c), default=-1)
        if c - lo > 1:
            judge((lo + c) // 2)
            continue
        # c's neighbour is measured; if it (and maybe more below) is undecided, look further down for a
        # point judged below, the bracket
        below = max((k for k, p in points.items() if k < c and p.verdict == "below"), default=-1)
        lowest = min(k for k in points if below < k <= c)
        if lowest - below <= 1:
            return _result(c, points)
        judge((below + lowest) // 2)


def _result(c, points) -> CrossingResult:
    below = [k for k, p in points.items() if p.verdict == "below" and (c is None or k < c)]
    return CrossingResult(c, max(below) if below else None, points)
