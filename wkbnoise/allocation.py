"""Where to spend ECC bits: predicted distortion ``D(m)``, the WKB-score greedy, baselines, ``rho*``.

docs/theory.md sections 5 and 6. A *plan* maps a layer name to ``m_l``, the number of its top bit
planes (MSB down) stored under ECC; its cost is ``sum_l n_l m_l`` protected data bits. Budgets are
given in bits per weight ``b`` (cost ``floor(b * N)``, ``N`` the number of quantized weights), so
every method is compared at the same budget. Each method's plans lie on its own nested path
(:func:`budget_path`): the plan at a larger budget protects everything the smaller one protects, so
expected accuracy cannot fall as the budget grows.

Everything here works on :class:`LayerStat` rows (size, scale, sensitivity ``G_l``, rates), which
the campaign fills from the model; nothing here runs a network.
"""

from __future__ import annotations

import heapq
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .ecc import get_code
from .errors import InputError
from .rates import FlipRates

__all__ = [
    "METHODS", "LayerStat", "Plan", "plane_weights", "plane_variance", "residual_variance",
    "uncorrected_variance", "predicted_distortion", "greedy_plan", "exact_plan", "frontier",
    "BudgetPath", "budget_path", "tac_plan", "magnitude_plan", "random_plan", "uniform_plan", "plan_for", "rho_star", "plan_to_json",
    "check_plan",
]

#: every method of theory section 5, in a fixed order (the order gives stable key ids)
METHODS = ("none", "correct-only", "uniform-msp", "magnitude", "random", "tac", "tac-bayes",
           "tac-bayes-gain", "gaussian")

#: the LUT correction each method applies (``build_lut(method=...)``); ``gaussian`` draws no bits
LUT_OF_METHOD = {"none": "none", "correct-only": "per-plane", "uniform-msp": "none", "magnitude": "per-plane",
                 "random": "per-plane", "tac": "per-plane", "tac-bayes": "bayes", "tac-bayes-gain": "bayes-gain",
                 "gaussian": "per-plane"}


def plane_weights(bits: int) -> np.ndarray:
    """Two's-complement plane weights ``c_k``: ``2^k`` for ``k < B-1`` and ``-2^(B-1)`` for the sign, float64[B]."""
    c = 2.0 ** np.arange(bits)
    c[-1] = -c[-1]
    return c


def _bit_variance(rates: FlipRates, p_one: np.ndarray | None) -> np.ndarray:
    """Per-plane ``E_b[v_k(b)]``: ``p1 pd (1-pd) + (1-p1) pu (1-pu)`` with ``p1 = P(b_k = 1)`` (0.5 if unknown)."""
    p1 = np.full(rates.bits, 0.5) if p_one is None else np.asarray(p_one, dtype=np.float64)
    return p1 * rates.p_down * (1 - rates.p_down) + (1 - p1) * rates.p_up * (1 - rates.p_up)


def plane_variance(rates: FlipRates, p_one: np.ndarray | None = None) -> np.ndarray:
    """Variance of plane ``k``'s contribution after per-plane correction, ``c_k^2 v_k / a_k^2`` [code units^2].

    Parameters
    ----------
    rates : FlipRates
        Raw per-plane rates (protected planes may already be zero).
    p_one : array_like of float, optional
        ``P(b_k = 1)`` per plane over the layer's clean codes; 0.5 when not given (exact for symmetric rates).
    """
    c = plane_weights(rates.bits)
    return c**2 * _bit_variance(rates, p_one) / rates.a**2


def residual_variance(rates: FlipRates, m: int, p_one: np.ndarray | None = None) -> float:
    """``V_l(m) = sum_{k < B - m} c_k^2 v_k / a_k^2`` [code units^2]: variance left after correction.

    Symmetric rates give ``p (1-p) / (1-2p)^2 (4^(B-m) - 1) / 3``.
    """
    _check_m(m, rates.bits)
    return float(plane_variance(rates, p_one)[: rates.bits - int(m)].sum())


def uncorrected_variance(rates: FlipRates, m: int, p_one: np.ndarray | None = None) -> float:
    """``sum_{k < B - m} c_k^2 v_k`` [code units^2]: variance of an uncorrected code (its drift is separate)."""
    _check_m(m, rates.bits)
    c = plane_weights(rates.bits)
    return float((c**2 * _bit_variance(rates, p_one))[: rates.bits - int(m)].sum())


def _check_m(m, bits: int) -> None:
    if isinstance(m, bool) or not isinstance(m, int | np.integer) or not 0 <= m <= bits:
        raise InputError(f"m={m!r} protected top planes must be an integer in 0..{bits}.")


@dataclass(frozen=True)
class LayerStat:
    """What allocation needs to know about one quantized layer.

    Parameters
    ----------
    name : str
        Layer name (the tensor name in the weight file).
    n_weights : int
        Number of stored weights ``n_l``.
    scale : float
        Quantization step ``s_l`` [weight units per code].
    sensitivity : float
        ``G_l = E_x ||dz/dW_l||_F^2`` [logit^2 per weight-unit^2].
    rates : FlipRates
        Raw flip rates of the layer's planes.
    p_one : ndarray of float, optional
        ``P(b_k = 1)`` per plane over the clean codes (only matters for asymmetric rates).
    """

    name: str
    n_weights: int
    scale: float
    sensitivity: float
    rates: FlipRates
    p_one: np.ndarray | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InputError(f"LayerStat name={self.name!r} must be a non-empty str (the layer's tensor name).")
        n = self.n_weights
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise InputError(f"layer {self.name!r}: n_weights={n!r} must be an integer >= 1 (stored weights).")
        for what, v in (("scale", self.scale), ("sensitivity", self.sensitivity)):
            if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating) or not math.isfinite(v) \
                    or v < 0:
                raise InputError(f"layer {self.name!r}: {what}={v!r} must be a finite number >= 0.")
        if not isinstance(self.rates, FlipRates):
            raise InputError(f"layer {self.name!r}: rates={self.rates!r} must be a FlipRates.")

    @property
    def bits(self) -> int:
        """Bits per stored weight ``B``."""
        return self.rates.bits

    def gains(self) -> np.ndarray:
        """Distortion removed by protecting plane ``j``: ``s^2 G c_j^2 v_j / a_j^2`` [logit^2], float64[B]."""
        return self.scale**2 * self.sensitivity * plane_variance(self.rates, self.p_one)

    def step_gains(self) -> np.ndarray:
        """Gains of the successive protection steps, top-down: step ``i`` protects plane ``B - 1 - i``."""
        return self.gains()[::-1].copy()


Plan = dict  # layer name -> protected top planes (int)


def _check_stats(stats: Sequence[LayerStat]) -> list[LayerStat]:
    stats = list(stats)
    if not stats:
        raise InputError("stats is empty: give one LayerStat per quantized layer.")
    names = [s.name for s in stats]
    if len(set(names)) != len(names):
        raise InputError(f"layer names must be unique, got {names}.")
    return stats


def total_weights(stats: Sequence[LayerStat]) -> int:
    """``N = sum_l n_l``."""
    return int(sum(s.n_weights for s in stats))


def budget_bits(stats: Sequence[LayerStat], bits_per_weight: float) -> int:
    """The budget ``C = floor(b N)`` protected data bits for ``b`` bits per weight."""
    if isinstance(bits_per_weight, bool) or not isinstance(bits_per_weight, int | float | np.integer | np.floating):
        raise InputError(f"budget={bits_per_weight!r} bits per weight must be a number, e.g. 0.5.")
    b = float(bits_per_weight)
    if not math.isfinite(b) or b < 0:
        raise InputError(f"budget={bits_per_weight!r} bits per weight must be a finite number >= 0.")
    return int(math.floor(b * total_weights(stats) + 1e-9))


def check_plan(stats: Sequence[LayerStat], plan: Mapping[str, int] | None) -> dict:
    """Check a plan against the layers: known names only, every ``m_l`` an integer in ``0..B``.

    Raises
    ------
    InputError
        On a layer name that is not in ``stats`` or a protected-plane count outside ``0..B``.
    """
    if plan is None:
        return {}
    if not isinstance(plan, Mapping):
        raise InputError(f"plan={plan!r} must be a dict layer name -> protected top planes.")
    bits = {s.name: s.bits for s in stats}
    unknown = sorted(set(plan) - set(bits), key=str)
    if unknown:
        raise InputError(f"plan names layers {unknown} that are not among the layers {sorted(bits)}; use their names.")
    for name, m in plan.items():
        if isinstance(m, bool) or not isinstance(m, int | np.integer) or not 0 <= m <= bits[name]:
            raise InputError(f"plan[{name!r}]={m!r} must be an integer in 0..{bits[name]} (protected top planes).")
    return {k: int(v) for k, v in plan.items()}


def plan_cost(stats: Sequence[LayerStat], plan: Mapping[str, int]) -> int:
    """Protected data bits of ``plan``: ``sum_l n_l m_l``."""
    plan = check_plan(stats, plan)
    return int(sum(s.n_weights * int(plan.get(s.name, 0)) for s in stats))


def predicted_distortion(stats: Sequence[LayerStat], plan: Mapping[str, int] | None = None) -> float:
    """``D(m) = sum_l s_l^2 G_l V_l(m_l)`` [logit^2]: predicted output distortion after mean correction."""
    plan = check_plan(stats, plan)
    return float(sum(s.scale**2 * s.sensitivity * residual_variance(s.rates, plan.get(s.name, 0), s.p_one)
                     for s in stats))


def _steps(stats):
    """Per layer: the cost ``n_l`` and the gains of its steps top-down (float64[B])."""
    return [(s.n_weights, s.step_gains()) for s in stats]


def greedy_plan(stats: Sequence[LayerStat], budget: int, *, skip: bool = True) -> Plan:
    """Greedy allocation by the WKB score ``g_(l,j) / n_l`` [logit^2 per protected bit].

    Each layer's next step is the plane just below its protected ones; the step with the highest
    score goes first. With convex steps (gains per bit falling within a layer, as they do 4x per plane)
    the greedy is optimal at every budget that ends on a whole step. ``skip=True`` keeps going past a
    step that does not fit, taking smaller steps of other layers that do.

    Parameters
    ----------
    stats : sequence of LayerStat
    budget : int
        Protected data bits ``C`` available.
    skip : bool
        Keep filling after the first step that does not fit.
    """
    stats = _check_stats(stats)
    steps = _steps(stats)
    m = [0] * len(stats)
    left = int(budget)
    heap = [(-g[0] / n, i) for i, (n, g) in enumerate(steps) if len(g)]
    heapq.heapify(heap)
    while heap:
        _, i = heapq.heappop(heap)
        n, g = steps[i]
        if n > left:
            if not skip:
                break
            continue  # this layer is done: protection is top-down
        left -= n
        m[i] += 1
        if m[i] < len(g):
            heapq.heappush(heap, (-g[m[i]] / n, i))
    return {s.name: m[i] for i, s in enumerate(stats)}


def frontier(stats: Sequence[LayerStat], max_budget: int | None = None, *, max_points: int = 200_000):
    """Exact Pareto frontier of (cost, distortion) over all plans: a multiple-choice knapsack DP.

    Returns
    -------
    cost : ndarray of int64
        Costs of the Pareto-optimal plans, increasing [protected data bits].
    dist : ndarray of float64
        Their predicted distortion ``D`` (strictly decreasing) [logit^2].
    plans : callable
        ``plans(i)`` -> the plan (dict) of frontier point ``i``.

    Raises
    ------
    InputError
        If the frontier grows beyond ``max_points`` (then use :func:`greedy_plan`).
    """
    stats = _check_stats(stats)
    d0 = predicted_distortion(stats, {})
    cost = np.zeros(1, dtype=np.int64)
    dist = np.array([d0])
    history = []
    for s in stats:
        gains = np.concatenate([[0.0], np.cumsum(s.step_gains())])
        opt_cost = s.n_weights * np.arange(len(gains), dtype=np.int64)
        c = (cost[:, None] + opt_cost[None, :]).ravel()
        d = (dist[:, None] - gains[None, :]).ravel()
        parent = np.repeat(np.arange(cost.size), len(gains))
        choice = np.tile(np.arange(len(gains)), cost.size)
        if max_budget is not None:
            keep = c <= max_budget
            c, d, parent, choice = c[keep], d[keep], parent[keep], choice[keep]
        order = np.lexsort((d, c))
        c, d, parent, choice = c[order], d[order], parent[order], choice[order]
        best = np.minimum.accumulate(d)
        keep = np.ones(c.size, dtype=bool)
        keep[1:] = d[1:] < best[:-1] - 1e-12 * np.abs(best[:-1])
        c, d, parent, choice = c[keep], d[keep], parent[keep], choice[keep]
        if c.size > max_points:
            raise InputError(f"the exact frontier has {c.size} points (> max_points={max_points}): use greedy_plan.")
        history.append((parent, choice))
        cost, dist = c, d

    def plans(i: int) -> Plan:
        out = {}
        for s, (parent, choice) in zip(reversed(stats), reversed(history), strict=True):
            out[s.name] = int(choice[i])
            i = int(parent[i])
        return {s.name: out[s.name] for s in stats}

    return cost, dist, plans


def exact_plan(stats: Sequence[LayerStat], budget: int) -> Plan:
    """The plan of least predicted distortion whose cost fits ``budget`` (exact, via :func:`frontier`).

    Not used by any method: these plans are not nested, and on VGG at p = 0.1 the exact plan at 1.0 bit
    per weight measured 0.846 accuracy against 0.97 for the greedy path's.
    """
    cost, _, plans = frontier(stats, max_budget=int(budget))
    return plans(int(np.searchsorted(cost, int(budget), side="right")) - 1)


def tac_plan(stats: Sequence[LayerStat], budget: int) -> Plan:
    """TAC allocation: the longest prefix of the WKB-greedy path (:func:`budget_path`) that fits ``budget``.

    The plans are nested (a larger budget protects a superset) and optimal for the predicted distortion at
    every budget that ends on a whole greedy step. Between steps the remainder is left unspent: filling it
    with smaller steps that fit (``greedy_plan(skip=True)``) or with the exact plan (:func:`exact_plan`)
    breaks the nesting, and the exact plan's trades (stripping one layer to buy another's sign plane) are
    where the first-order distortion underestimates the damage most.
    """
    path = budget_path("tac", stats)
    return path.plan(path.index(budget))


@dataclass(frozen=True)
class BudgetPath:
    """A method's nested plans: step ``k`` adds one protected plane (top-down) to layer ``steps[k-1]``.

    Attributes
    ----------
    method : str
    names : tuple of str
        Layer names, in the order of the stats.
    steps : tuple of tuple of int
        Per step, the layers that get one more protected plane (one layer; every layer for ``uniform-msp``).
    costs : ndarray of int64, shape (len(steps) + 1,)
        Protected data bits of the plan after ``k`` steps (``costs[0] = 0``), non-decreasing.
    """

    method: str
    names: tuple
    steps: tuple
    costs: np.ndarray

    def __len__(self) -> int:
        """Number of plans on the path (steps + 1)."""
        return len(self.steps) + 1

    def plan(self, k: int) -> Plan:
        """The plan after the first ``k`` steps."""
        if not 0 <= int(k) < len(self):
            raise InputError(f"step k={k!r} is outside the path's 0..{len(self) - 1}.")
        m = [0] * len(self.names)
        for layers in self.steps[: int(k)]:
            for i in layers:
                m[i] += 1
        return dict(zip(self.names, m, strict=True))

    def index(self, budget: int) -> int:
        """The longest prefix whose cost fits ``budget`` protected data bits."""
        return int(np.searchsorted(self.costs, int(budget), side="right")) - 1


def _greedy_order(stats) -> list[int]:
    """Layer of each step of the WKB greedy without skipping (highest score first; ties by layer order)."""
    steps = _steps(stats)
    heap = [(-g[0] / n, i, 0) for i, (n, g) in enumerate(steps) if len(g)]
    heapq.heapify(heap)
    order = []
    while heap:
        _, i, j = heapq.heappop(heap)
        n, g = steps[i]
        order.append(i)
        if j + 1 < len(g):
            heapq.heappush(heap, (-g[j + 1] / n, i, j + 1))
    return order


def _magnitude_order(stats) -> list[int]:
    items = []
    for i, s in enumerate(stats):
        qmax = 2 ** (s.bits - 1) - 1
        for step in range(s.bits):
            items.append((-((s.scale * qmax) ** 2) * 4.0 ** (s.bits - 1 - step), i, step))
    items.sort()
    return [i for _, i, _ in items]


def _random_order(stats, seed) -> list[int]:
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    picks = np.repeat(np.arange(len(stats)), [s.bits for s in stats])
    rng.shuffle(picks)
    return [int(i) for i in picks]


def budget_path(method: str, stats: Sequence[LayerStat], *, seed: int = 0) -> BudgetPath:
    """The nested plans of ``method``, from nothing protected to its last plan.

    ``tac``, ``tac-bayes``, ``tac-bayes-gain`` and ``gaussian`` follow the WKB score (greedy, no
    skipping), ``magnitude`` its ``||W_l||_inf^2 c_j^2`` order, ``random`` a seeded random order,
    ``uniform-msp`` one plane of every layer per step; ``none`` and ``correct-only`` have one plan.
    Protection is top-down within a layer on every path.
    """
    if method not in METHODS:
        raise InputError(f"method={method!r} is not known. Use one of {', '.join(METHODS)}.")
    stats = _check_stats(stats)
    every = tuple(range(len(stats)))
    if method in ("none", "correct-only"):
        steps = ()
    elif method == "uniform-msp":
        steps = (every,) * stats[0].bits
    elif method == "magnitude":
        steps = tuple((i,) for i in _magnitude_order(stats))
    elif method == "random":
        steps = tuple((i,) for i in _random_order(stats, seed))
    else:
        steps = tuple((i,) for i in _greedy_order(stats))
    sizes = [s.n_weights for s in stats]
    costs = np.cumsum([0] + [sum(sizes[i] for i in layers) for layers in steps]).astype(np.int64)
    return BudgetPath(method, tuple(s.name for s in stats), steps, costs)


def magnitude_plan(stats: Sequence[LayerStat], budget: int) -> Plan:
    """Baseline: the longest prefix of the ``||W_l||_inf^2 c_j^2`` order (no Jacobian, no layer size) that fits."""
    path = budget_path("magnitude", stats)
    return path.plan(path.index(budget))


def random_plan(stats: Sequence[LayerStat], budget: int, seed: int = 0) -> Plan:
    """Baseline: the longest prefix of a seeded random layer-plane order (top-down within a layer) that fits."""
    path = budget_path("random", stats, seed=seed)
    return path.plan(path.index(budget))


def uniform_plan(stats: Sequence[LayerStat], budget: int) -> Plan:
    """``uniform-msp``: the same top ``m`` planes in every layer, ``m = floor(C / N)`` (cost ``m N <= C``)."""
    stats = _check_stats(stats)
    m = min(int(budget) // total_weights(stats), stats[0].bits)
    return {s.name: m for s in stats}


def plan_for(method: str, stats: Sequence[LayerStat], bits_per_weight: float, *, seed: int = 0) -> Plan:
    """The protection plan of ``method`` at ``bits_per_weight``: the longest prefix of its nested path
    (:func:`budget_path`) whose cost fits ``floor(b N)`` (every method at the same budget)."""
    path = budget_path(method, stats, seed=seed)
    return path.plan(path.index(budget_bits(stats, bits_per_weight)))


def uniform_distortion(stats: Sequence[LayerStat], m: int, bias: float = 0.0) -> float:
    """``D_U(m)``: predicted distortion of uncorrected ``uniform-msp(m)`` [logit^2].

    The variance term ``sum_l s_l^2 G_l sum_{k<B-m} c_k^2 v_k`` plus ``bias``, the distortion of the
    uncorrected mean drift (T5's bias term, from :func:`wkbnoise.sensitivity.bias_distortion`).
    """
    return float(sum(s.scale**2 * s.sensitivity * uncorrected_variance(s.rates, m, s.p_one) for s in stats)) + bias


def rho_star(stats: Sequence[LayerStat], m: int, bias: float = 0.0, *, response=None) -> dict:
    """Closed-form saturation ratio ``rho*(m) = m N / min{C : D_TAC(C) <= D_U(m)}``, ``C`` on TAC's path.

    With ``response`` (a :class:`wkbnoise.distortion.ResponseCurve` ``F``, measured at these rates) both sides
    go through the network's measured response: ``F(S_TAC(C)) <= F(S_U(m)) + bias``, ``S`` the first-order
    distortions. Values within ``1e-9`` of the unprotected distortion count as equal (a sum and a difference
    of the same terms are not bit-identical).

    Returns
    -------
    dict
        ``rho`` (inf when TAC needs no protected bit), ``c_uniform`` (``m N``), ``c_tac`` [bits],
        ``d_uniform``, ``d_tac`` [logit^2].
    """
    stats = _check_stats(stats)
    _check_m(m, min(s.bits for s in stats))
    n_total = total_weights(stats)
    cost, dist = greedy_path(stats)
    slack = 1e-9 * float(dist[0])
    if response is None:
        target = uniform_distortion(stats, m, bias)
        ok = np.nonzero(dist <= target + slack)[0]
    else:
        target = float(response(uniform_distortion(stats, m))) + bias
        ok = np.nonzero(np.asarray(response(dist)) <= target + slack)[0]
    c_tac = int(cost[ok[0]]) if ok.size else None
    c_u = int(m) * n_total
    if c_tac is None:
        rho = 0.0
    elif c_tac == 0:
        rho = math.inf
    else:
        rho = c_u / c_tac
    return {"m": int(m), "rho": rho, "c_uniform": c_u, "c_tac": c_tac, "d_uniform": target,
            "d_tac": (float(dist[ok[0]]) if response is None else float(response(dist[ok[0]]))) if ok.size else None}


def greedy_path(stats: Sequence[LayerStat]):
    """Costs and predicted distortions along TAC's path (the WKB greedy, no skipping), nothing to everything."""
    stats = _check_stats(stats)
    steps = _steps(stats)
    cost, dist = [0], [predicted_distortion(stats)]
    taken = [0] * len(stats)
    for i in _greedy_order(stats):
        n, g = steps[i]
        cost.append(cost[-1] + n)
        dist.append(dist[-1] - g[taken[i]])
        taken[i] += 1
    return np.array(cost, dtype=np.int64), np.array(dist)


def plan_to_json(stats: Sequence[LayerStat], plan: Mapping[str, int], *, code: str = "ideal",
                 method: str = "tac", bits_per_weight: float | None = None) -> str:
    """A protection plan a hardware engineer can take away, as JSON.

    Per layer: the protected planes (bit indices, 0 = LSB), the protected data bits ``n_l m_l`` and the
    check bits of ``code`` for them (whole words per layer); totals; and the predicted distortion.
    """
    code_obj = get_code(code)
    plan = check_plan(stats, plan)
    layers = []
    for s in stats:
        m = int(plan.get(s.name, 0))
        data = s.n_weights * m
        layers.append({"name": s.name, "n_weights": s.n_weights, "bits": s.bits,
                       "protected_planes": list(range(s.bits - 1, s.bits - 1 - m, -1)),
                       "protected_data_bits": data, "check_bits": code_obj.check_bits(data)})
    n_total = total_weights(stats)
    data = sum(x["protected_data_bits"] for x in layers)
    check = sum(x["check_bits"] for x in layers)
    doc = {"method": method, "code": code_obj.name, "budget_bits_per_weight": bits_per_weight,
           "total_weights": n_total, "protected_data_bits": data, "check_bits": check,
           "check_bits_per_weight": check / n_total,
           "predicted_distortion": predicted_distortion(stats, plan), "layers": layers}
    return json.dumps(doc, indent=1)
