"""The network's response to its own fault noise: first-order distortion mapped to the measured one.

The first-order prediction ``S(m) = sum_l s_l^2 G_l V_l(m_l)`` (:func:`wkbnoise.allocation.predicted_distortion`)
treats each layer's noise as a small, independent perturbation. At the flip rates that matter it is not:
a sign-plane flip moves a weight by ``||W_l||_inf``, hundreds of them land in every layer, and the
perturbation of one layer acts on activations that the other layers' faults have already moved. On
``resnet20`` at ``p = 0.01`` the same fault draws give 3.3 logit^2 when scaled down to the linear regime
and 14.7 at full size; one layer at a time the excess is only 1.15x on average (docs/theory.md).

The model kept here: the distortion is a monotone function of the first-order one,
``D(m) = F(S(m))``, and ``F`` is *measured* at the operating rates. Along the allocation's own greedy path
(from nothing protected to everything) we take the plans where ``S`` first falls below ``S_0, S_0/4,
S_0/16, ...`` and measure each plan's distortion with real bit flips and the per-plane lookup tables on the
unlabeled calibration inputs (a few Monte Carlo draws, fixed keys). ``F`` interpolates these points as a
power law per segment. Where a point does not exceed ``S`` significantly the first-order value is kept:
there ``G_l``, from Gaussian perturbations of every weight, is a far less noisy estimate than sparse flips.

Since ``F`` is monotone, the plan of least ``S`` at a budget is also the plan of least ``D``: the WKB
greedy keeps its order, and ``rho*`` compares ``F`` of both sides.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .errors import InputError

__all__ = ["ResponseCurve", "fit_response", "fault_distortion", "RESPONSE_TAG"]

#: first entry of the fault keys of the response draws (campaign points use 5-entry keys; these use 3)
RESPONSE_TAG = 0xD15


#: a measured point replaces the first-order value only when it differs by more than this many standard errors
GATE_Z = 2.0


def _pool_increasing(d: np.ndarray) -> np.ndarray:
    """Least-squares nondecreasing fit of ``d`` (pool adjacent violators, equal weights)."""
    blocks = []  # [mean, count]
    for v in d.tolist():
        blocks.append([v, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, c2 = blocks.pop()
            v1, c1 = blocks.pop()
            blocks.append([(v1 * c1 + v2 * c2) / (c1 + c2), c1 + c2])
    return np.concatenate([np.full(c, v) for v, c in blocks]) if blocks else np.zeros(0)


def _knots(s: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(log S, log F)`` knots from the measured plans ``s`` [k] and their draws ``d`` [k, draws].

    A plan's mean replaces its first-order value only where it exceeds it by more than ``GATE_Z`` standard
    errors. Only excess counts: the layers' faults compound, they do not cancel, and a mean of a few sparse-flip
    draws falls *below* the true mean more often than above (the rare flips of very sensitive weights are
    missed). The values are then made nondecreasing in ``S``.
    """
    keep = s > 0
    s, d = s[keep], d[keep]
    if s.size == 0:
        return np.zeros(1), np.zeros(1)  # F(S) = S
    order = np.argsort(s)
    s, d = s[order], d[order]
    mean = d.mean(axis=1)
    se = d.std(axis=1, ddof=1) / math.sqrt(d.shape[1]) if d.shape[1] > 1 else np.zeros(s.size)
    f = np.where(mean - s > GATE_Z * se, mean, s)
    f = np.maximum(_pool_increasing(f), 1e-300)
    return np.log(s), np.log(f)


@dataclass(frozen=True)
class ResponseCurve:
    """``F``: first-order distortion ``S`` -> distortion ``D``, from Monte Carlo draws on calibration inputs.

    Between the measured plans ``log F`` is linear in ``log S`` (a power law per segment); beyond them the end
    ratios ``F / S`` hold. A plan's measured mean counts only where it exceeds ``S`` by more than
    ``GATE_Z`` standard errors; otherwise that knot is the first-order value.

    Attributes
    ----------
    s : ndarray of float64
        First-order predictions ``S`` of the measured plans [output^2].
    d : ndarray of float64, shape (plans, draws)
        Measured distortion of each draw [output^2].
    cost : ndarray of int64
        Protected data bits of each measured plan.
    n_inputs : int
        Calibration inputs.
    """

    s: np.ndarray
    d: np.ndarray
    cost: np.ndarray
    n_inputs: int = 0

    @classmethod
    def identity(cls) -> ResponseCurve:
        """``F(S) = S``: the first-order model itself."""
        return cls(np.zeros(0), np.zeros((0, 2)), np.zeros(0, dtype=np.int64))

    @property
    def draws(self) -> int:
        """Fault draws per measured plan."""
        return int(self.d.shape[1])

    @cached_property
    def knots(self) -> tuple[np.ndarray, np.ndarray]:
        """``(log S, log F)`` at the measured plans."""
        return _knots(self.s, self.d)

    @staticmethod
    def _eval(s, knots):
        s = np.asarray(s, dtype=np.float64)
        ls = np.log(np.maximum(s, 1e-300))
        ratio = np.exp(np.interp(ls, knots[0], knots[1] - knots[0]))
        return np.where(s > 0, s * ratio, 0.0)

    def __call__(self, s):
        """``F(S)`` [output^2]; an array in, an array out."""
        out = self._eval(s, self.knots)
        return float(out) if out.ndim == 0 else out

    def ratio(self, s) -> np.ndarray:
        """``F(S) / S`` [dimensionless]."""
        s = np.asarray(s, dtype=np.float64)
        return self._eval(s, self.knots) / np.where(s > 0, s, 1.0)

    def relative_se(self, s) -> float:
        """Relative standard error of ``F(S)``: jackknife over the draws (each curve rebuilt without one draw)."""
        n = self.draws
        if self.s.size == 0 or n < 3:
            return 0.0
        full = float(self._eval(s, self.knots))
        if full <= 0:
            return 0.0
        vals = np.array([float(self._eval(s, _knots(self.s, np.delete(self.d, t, axis=1)))) for t in range(n)])
        return float(math.sqrt((n - 1) / n * np.sum((vals - vals.mean()) ** 2)) / full)

    def as_arrays(self) -> dict[str, np.ndarray]:
        """The curve as arrays for a run file (``response_s``, ``response_d``, ``response_cost``)."""
        return {"response_s": self.s, "response_d": self.d, "response_cost": self.cost}

    @classmethod
    def from_arrays(cls, data: Mapping[str, np.ndarray], n_inputs: int = 0) -> ResponseCurve:
        """Inverse of :meth:`as_arrays`."""
        return cls(np.asarray(data["response_s"], dtype=np.float64), np.asarray(data["response_d"], dtype=np.float64),
                   np.asarray(data["response_cost"], dtype=np.int64), n_inputs)


def fault_distortion(model, x, quantized: Mapping, rates: Mapping, z_ref: np.ndarray, keys: np.ndarray, *,
                     batch_size: int = 256) -> float:
    """``mean_x ||z(W~) - z_ref||^2`` for one draw of real bit flips, per-plane corrected [output^2].

    Parameters
    ----------
    quantized : mapping of str to QuantizedTensor
        Every quantized layer, in ``model.layers`` order.
    rates : mapping of str to FlipRates
        Rates per layer with the plan's protected planes already at 0.
    keys : ndarray of uint64
        One fault key per layer.
    """
    from .correction import build_lut
    from .faults import flip_dequantize
    from .parallel import threads
    from .sensitivity import model_outputs, output_distortion

    weights = {}
    with threads(1):
        for key, (name, qt) in zip(keys, quantized.items(), strict=True):
            r = rates[name]
            lut = build_lut(r, qt.scale, method="per-plane" if (np.any(r.p_down) or np.any(r.p_up)) else "none")
            weights[name] = flip_dequantize(qt.codes, r, lut, key)
    return output_distortion(z_ref, model_outputs(model, x, weights, batch_size))


def fit_response(model, x, quantized: Mapping, stats: Sequence, *, levels: int = 4, draws: int = 8, seed: int = 0,
                 batch_size: int = 256) -> ResponseCurve:
    """Measure ``F`` at the plans of the greedy path where ``S`` first falls below ``S_0 4^-k``, k < ``levels``.

    Parameters
    ----------
    model : Model
        ``.layers`` and ``forward(x, weights=...)``.
    x : ndarray of float32
        Preprocessed unlabeled calibration inputs.
    quantized : mapping of str to QuantizedTensor
        The clean INT-B layers (``Evaluator.quantized``), in the order of ``stats``.
    stats : sequence of LayerStat
        First-order statistics at the operating rates (``Evaluator.layer_stats``).
    levels : int
        Plans measured, >= 1 (each a factor 4 lower in ``S``).
    draws : int
        Fault draws per plan, >= 2 (the standard errors need two).
    seed : int
        Root seed of the fault keys.

    Returns
    -------
    ResponseCurve
    """
    from ._rng import derive_keys
    from .allocation import greedy_path, greedy_plan, predicted_distortion
    from .parallel import map_chunks, serial_blas
    from .sensitivity import model_outputs

    for name, v, lo in (("levels", levels, 1), ("draws", draws, 2)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise InputError(f"{name}={v!r} must be an integer >= {lo}.")
    stats = list(stats)
    if [s.name for s in stats] != list(quantized):
        raise InputError("stats and quantized must name the same layers in the same order.")
    cost, dist = greedy_path(stats)
    s0 = float(dist[0])
    if not s0 > 0:
        return ResponseCurve.identity()
    base = {n: qt.dequantize() for n, qt in quantized.items()}
    s_pts, d_pts, c_pts = [], [], []
    tasks = []  # (rates of the plan, fault keys): every forward pass of the fit, independent of the others
    for k in range(levels):
        idx = int(np.nonzero(dist <= s0 * 4.0**-k * (1 + 1e-12))[0][0])
        plan = greedy_plan(stats, int(cost[idx]))
        s = predicted_distortion(stats, plan)
        if not s > 0 or (c_pts and int(cost[idx]) == c_pts[-1]):
            continue
        rates = {st.name: st.rates.protect_top(int(plan.get(st.name, 0))) for st in stats}
        tasks += [(rates, derive_keys(seed, (RESPONSE_TAG, k, t), len(stats))) for t in range(draws)]
        s_pts.append(s)
        c_pts.append(int(cost[idx]))
    with serial_blas():
        z_ref = model_outputs(model, x, base, batch_size)
        # side by side on Numba's threads, each pass on one BLAS thread: the same sums as one after another
        d_pts = map_chunks(lambda i, slot: fault_distortion(model, x, quantized, tasks[i][0], z_ref, tasks[i][1],
                                                            batch_size=batch_size),
                           len(tasks))
    return ResponseCurve(np.asarray(s_pts, dtype=np.float64), np.asarray(d_pts, dtype=np.float64).reshape(-1, draws),
                         np.asarray(c_pts, dtype=np.int64), int(len(x)))
