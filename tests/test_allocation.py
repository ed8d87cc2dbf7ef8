"""Allocation (theory sections 5-6): D(m), the WKB greedy, the exact DP, baselines at equal budgets, rho*."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wkbnoise import FlipRates, InputError
from wkbnoise.allocation import (
    METHODS,
    LayerStat,
    budget_bits,
    budget_path,
    exact_plan,
    frontier,
    greedy_path,
    greedy_plan,
    plan_cost,
    plan_for,
    plan_to_json,
    predicted_distortion,
    residual_variance,
    rho_star,
    tac_plan,
    uncorrected_variance,
)


def _stats(seed=0, n_layers=3, bits=4, p=0.1):
    rng = np.random.default_rng(seed)
    rates = FlipRates.symmetric(p, bits)
    return [LayerStat(f"l{i}", int(rng.integers(3, 40)), float(rng.uniform(0.01, 0.2)),
                      float(rng.uniform(0.1, 50.0)), rates) for i in range(n_layers)]


def _brute(stats, budget):
    """Every plan, by enumeration: the least distortion whose cost fits."""
    best = None
    for ms in itertools.product(*[range(s.bits + 1) for s in stats]):
        plan = {s.name: m for s, m in zip(stats, ms)}
        if plan_cost(stats, plan) <= budget:
            d = predicted_distortion(stats, plan)
            if best is None or d < best[0] - 1e-15:
                best = (d, plan)
    return best


def test_residual_variance_closed_form():
    for bits, p, m in [(8, 0.1, 0), (8, 0.1, 3), (4, 0.01, 1), (6, 0.3, 5)]:
        r = FlipRates.symmetric(p, bits)
        expect = p * (1 - p) / (1 - 2 * p) ** 2 * (4 ** (bits - m) - 1) / 3
        assert residual_variance(r, m) == pytest.approx(expect, rel=1e-12)
        assert uncorrected_variance(r, m) == pytest.approx(expect * (1 - 2 * p) ** 2, rel=1e-12)


def test_asymmetric_variance_uses_bit_balance():
    r = FlipRates.uniform(0.2, 0.0, 4)
    p_one = np.array([0.5, 0.25, 1.0, 0.0])
    c2 = np.array([1, 4, 16, 64.0])
    expect = float((c2 * p_one * 0.2 * 0.8 / 0.8**2).sum())
    assert residual_variance(r, 0, p_one) == pytest.approx(expect)


@pytest.mark.parametrize("seed", range(6))
def test_greedy_is_optimal_on_whole_steps(seed):
    stats = _stats(seed)
    cost, dist = greedy_path(stats)
    for c, d in zip(cost, dist, strict=True):
        plan = greedy_plan(stats, int(c), skip=False)
        assert plan_cost(stats, plan) == c
        assert predicted_distortion(stats, plan) == pytest.approx(d, rel=1e-9, abs=1e-12)
        assert d == pytest.approx(_brute(stats, int(c))[0], rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_exact_plan_matches_brute_force_between_steps(seed):
    stats = _stats(seed)
    rng = np.random.default_rng(seed)
    for budget in rng.integers(0, plan_cost(stats, {s.name: s.bits for s in stats}) + 1, size=12):
        plan = exact_plan(stats, int(budget))
        assert plan_cost(stats, plan) <= budget
        assert predicted_distortion(stats, plan) == pytest.approx(_brute(stats, int(budget))[0], rel=1e-9, abs=1e-12)
        # the greedy with skipping fits but may be worse: never better than the optimum
        g = greedy_plan(stats, int(budget))
        assert plan_cost(stats, g) <= budget
        assert predicted_distortion(stats, g) >= predicted_distortion(stats, plan) - 1e-12


def test_greedy_can_be_beaten_between_steps():
    """Proves the brute-force check bites: between whole steps the skipping greedy is sometimes suboptimal."""
    def beaten(seed):
        stats = _stats(seed)
        for budget in range(0, plan_cost(stats, {s.name: s.bits for s in stats}), 7):
            if predicted_distortion(stats, greedy_plan(stats, budget)) > _brute(stats, budget)[0] * (1 + 1e-9) + 1e-12:
                return True
        return False

    assert any(beaten(seed) for seed in range(20))


def test_baselines_share_the_budget():
    stats = _stats(3, n_layers=5, bits=8)
    n = sum(s.n_weights for s in stats)
    for b in (0.25, 0.5, 1.0, 2.0, 3.7):
        budget = budget_bits(stats, b)
        assert budget == int(np.floor(b * n + 1e-9))
        for method in METHODS:
            plan = plan_for(method, stats, b, seed=1)
            assert set(plan) == {s.name for s in stats}
            assert plan_cost(stats, plan) <= budget, method
        assert plan_for("uniform-msp", stats, b) == {s.name: int(b) for s in stats}
        assert plan_cost(stats, plan_for("none", stats, b)) == 0
    # at a budget that ends on a whole step of its path, tac is never predicted worse than any other method
    for c in greedy_path(stats)[0]:
        d_tac = predicted_distortion(stats, tac_plan(stats, int(c)))
        assert plan_cost(stats, tac_plan(stats, int(c))) == c
        for method in ("magnitude", "random", "uniform-msp"):
            assert d_tac <= predicted_distortion(stats, plan_for(method, stats, c / n, seed=2)) + 1e-12


def _is_subplan(small, big):
    return all(small[k] <= big[k] for k in small)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n_layers=st.integers(1, 6), bits=st.integers(2, 8),
       p=st.floats(0.001, 0.45), grid=st.lists(st.floats(0.0, 8.0), min_size=2, max_size=12))
def test_every_method_is_nested_along_its_budget_path(seed, n_layers, bits, p, grid):
    """A plan at a larger budget protects everything a smaller one does, for every method."""
    stats = _stats(seed, n_layers=n_layers, bits=bits, p=p)
    grid = sorted(grid)
    for method in METHODS:
        plans = [plan_for(method, stats, b, seed=seed) for b in grid]
        for b, plan in zip(grid, plans, strict=True):
            assert plan_cost(stats, plan) <= budget_bits(stats, b)
            assert all(0 <= v <= bits for v in plan.values())
        for small, big in zip(plans, plans[1:]):
            assert _is_subplan(small, big), (method, small, big)
        path = budget_path(method, stats, seed=seed)
        assert np.all(np.diff(path.costs) > 0) and path.costs[0] == 0
        for k in range(len(path)):
            assert plan_cost(stats, path.plan(k)) == path.costs[k]
            if k:
                assert _is_subplan(path.plan(k - 1), path.plan(k))


def test_nestedness_check_rejects_the_skipping_greedy():
    """The subset check bites: the greedy that fills with smaller steps is not nested."""
    r = FlipRates.symmetric(0.1, 2)
    stats = [LayerStat("big", 7, 1.0, 10.0, r), LayerStat("b", 3, 1.0, 1.0, r), LayerStat("c", 3, 1.0, 1.0, r)]
    at6, at7 = greedy_plan(stats, 6), greedy_plan(stats, 7)
    assert at6 == {"big": 0, "b": 1, "c": 1} and at7 == {"big": 1, "b": 0, "c": 0}
    assert not _is_subplan(at6, at7)
    # tac's path leaves the remainder unspent instead
    assert tac_plan(stats, 6) == {"big": 0, "b": 0, "c": 0} and tac_plan(stats, 7) == at7


def test_magnitude_ignores_jacobian_and_size():
    r = FlipRates.symmetric(0.1, 8)
    big_scale = LayerStat("wide", 100, 1.0, 0.001, r)  # large ||W||_inf, insensitive
    sensitive = LayerStat("tiny", 10, 0.1, 1000.0, r)
    stats = [big_scale, sensitive]
    assert plan_for("magnitude", stats, 100 / 110)["wide"] == 1
    assert plan_for("tac", stats, 100 / 110)["tiny"] >= 1


def test_rho_star_hand_computed():
    r = FlipRates.symmetric(0.1, 2)  # c = (1, -2), v = 0.09, a^2 = 0.64
    stats = [LayerStat("A", 10, 1.0, 4.0, r), LayerStat("B", 30, 1.0, 1.0, r)]
    # D_U(1) = 4*0.09 + 1*0.09 = 0.45; TAC frontier: (0, 3.515625), (10, 1.265625), (20, 0.703125),
    # (50, 0.140625), (80, 0): the first cost with D <= 0.45 is 50, so rho* = 40 / 50
    cost, dist, _ = frontier(stats)
    np.testing.assert_array_equal(cost, [0, 10, 20, 50, 80])
    np.testing.assert_allclose(dist, [3.515625, 1.265625, 0.703125, 0.140625, 0.0], atol=1e-12)
    out = rho_star(stats, 1)
    assert out["c_uniform"] == 40 and out["c_tac"] == 50 and out["rho"] == pytest.approx(0.8)
    # the uncorrected drift of uniform-msp raises its distortion: bias 0.3 -> target 0.75 -> C_TAC = 20
    assert rho_star(stats, 1, bias=0.3)["rho"] == pytest.approx(2.0)
    assert rho_star(stats, 1, bias=0.3)["rho"] != pytest.approx(0.8)


def test_plan_json_counts_check_bits():
    stats = _stats(1, n_layers=2, bits=8)
    plan = {stats[0].name: 2, stats[1].name: 0}
    doc = json.loads(plan_to_json(stats, plan, code="secded-72-64", bits_per_weight=0.5))
    layer = doc["layers"][0]
    assert layer["protected_planes"] == [7, 6]
    assert layer["protected_data_bits"] == 2 * stats[0].n_weights
    assert layer["check_bits"] == -(-2 * stats[0].n_weights // 64) * 8
    assert doc["layers"][1]["protected_planes"] == [] and doc["layers"][1]["check_bits"] == 0


def test_bad_inputs():
    stats = _stats()
    with pytest.raises(InputError, match="method"):
        plan_for("nope", stats, 1)
    with pytest.raises(InputError, match="budget"):
        plan_for("tac", stats, -1)
