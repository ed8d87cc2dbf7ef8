"""Retention, flip probabilities and the inverse problem (spec/physics.md sections 4-6 and 9)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize
from scipy.stats import norm

from wkbnoise import FlipRates, InputError, PhysicsDomainError
from wkbnoise.constants import ELEMENTARY_CHARGE_C, SECONDS_PER_YEAR, VACUUM_PERMITTIVITY_F_PER_M
from wkbnoise.physics import (
    Oxide,
    StorageCell,
    counting_mean_time_s,
    current_density_A_per_m2,
    flip_probability,
    flip_rates,
    log_flip_probability,
    memory_flip_rates,
    plane_rates,
    retention_thickness_nm,
    retention_time_s,
    symmetric_rate,
    thickness_for,
)

TEN_YEARS = 10 * SECONDS_PER_YEAR
SI_LIKE = dict(electrode_mass_ratio=0.5, band_bottom_eV=-0.1)
METAL = dict(electrode_mass_ratio=1.0, band_bottom_eV=-5.0)


def fg(d, **kw):
    return StorageCell.floating_gate(Oxide.from_material("SiO2", d), **kw)


# -- cells and materials -----------------------------------------------------------------------------------------
def test_floating_gate_cell_numbers():
    """20 x 20 nm^2, 4.4 nm, alpha_G = 0.6: C_T = 7.8 aF, ~97 electrons for 2 V (spec: 20.6 mV = 2 V / 97)."""
    c = fg(4.4)
    c_tun = 3.9 * VACUUM_PERMITTIVITY_F_PER_M * 400e-18 / 4.4e-9
    assert float(c.capacitance_total_F) == pytest.approx(c_tun / 0.4, rel=1e-12)
    assert float(c.capacitance_total_F) == pytest.approx(7.8e-18, rel=0.01)
    assert c.electrons_stored == 97
    assert 2.0 / c.electrons_stored == pytest.approx(20.6e-3, abs=1e-4)
    assert ELEMENTARY_CHARGE_C / float(c.capacitance_total_F) == pytest.approx(20.4e-3, abs=1e-4)


def test_material_table_and_errors():
    hfo2 = Oxide.from_material("hfo2", 3.0)
    assert (hfo2.material, hfo2.barrier_eV, hfo2.mass_ratio, hfo2.k_rel) == ("HfO2", 1.5, 0.15, 22.0)
    assert Oxide.from_material("Si3N4", 3.0).mass_ratio == 0.5
    assert Oxide.from_material("Al2O3", 3.0, mass_ratio=0.3).barrier_eV == 2.8
    with pytest.raises(InputError, match="no sourced tunnelling mass"):
        Oxide.from_material("Al2O3", 3.0)
    with pytest.raises(InputError, match="not in the oxide table"):
        Oxide.from_material("Unobtainium", 3.0)
    with pytest.raises(InputError, match="thickness_nm=-1.0"):
        Oxide.from_material("SiO2", -1.0)
    with pytest.raises(InputError, match="thickness_nm"):
        Oxide(thickness_nm=np.array([1.0, 0.0]))
    with pytest.raises(InputError, match="unknown override"):
        Oxide.from_material("SiO2", 3.0, barrier=3.0)
    with pytest.raises(InputError, match="v_sense_V"):
        fg(4.0, v_sense_V=2.5)
    with pytest.raises(InputError, match="coupling_ratio"):
        fg(4.0, coupling_ratio=1.0)


# -- deterministic retention ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("d, t_spec", [(3.0, 35.0), (4.0, 2.6e6), (4.5, 7.2e8), (6.0, 1.8e16)])
def test_worked_example_retention_times(d, t_spec):
    assert float(retention_time_s(fg(d))) == pytest.approx(t_spec, rel=0.03)


def test_retention_quadrature_against_quad_and_closed_form():
    c = fg(4.0)
    c_per_a = 3.9 * VACUUM_PERMITTIVITY_F_PER_M / (0.4 * 4e-9)
    ref, _ = integrate.quad(lambda v: 1 / float(current_density_A_per_m2(v, c.oxide, **SI_LIKE)), 1.0, 2.0,
                            epsrel=1e-10, limit=200)
    assert float(retention_time_s(c)) == pytest.approx(c_per_a * ref, rel=1e-7)
    # area-free when C_T comes from the oxide
    assert float(retention_time_s(fg(4.0, width_nm=90.0))) == pytest.approx(float(retention_time_s(c)), rel=1e-12)
    # a thick oxide plus a constant other leak: t = C_T (V0 - Vs) / I_other
    thick = fg(9.0, i_other_A=1e-20)
    assert float(retention_time_s(thick)) == pytest.approx(float(thick.capacitance_total_F) * 1.0 / 1e-20, rel=1e-6)


def test_ten_year_thickness_and_slope():
    assert float(retention_thickness_nm(TEN_YEARS, fg(5.0))) == pytest.approx(4.43, abs=0.01)
    assert float(retention_thickness_nm(TEN_YEARS, fg(5.0, **METAL))) == pytest.approx(4.58, abs=0.01)
    d_star = float(retention_thickness_nm(TEN_YEARS, fg(5.0)))
    assert float(retention_time_s(fg(d_star))) == pytest.approx(TEN_YEARS, rel=1e-9)
    h = 1e-3
    slope = float(np.log(retention_time_s(fg(d_star + h)) / retention_time_s(fg(d_star - h)))) / (2 * h)
    assert slope == pytest.approx(11.3, abs=0.1)
    assert slope / math.log(10) / 10 == pytest.approx(0.49, abs=0.01)  # decades per angstrom
    for d in (4.4, 5.0):  # sigma_ln_tau = s * 3 % of d: 1.5 .. 1.7
        assert 1.45 < slope * 0.03 * d < 1.75


# -- Model A --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("s_rel, d_spec", [(0.02, 4.89), (0.03, 5.16), (0.05, 5.81)])
def test_inverse_problem_answers(s_rel, d_spec):
    d = float(thickness_for(1e-6, TEN_YEARS, fg(5.0), sigma_thickness_rel=s_rel))
    assert d == pytest.approx(d_spec, abs=0.05)
    d_star = float(retention_thickness_nm(TEN_YEARS, fg(5.0)))
    assert d == pytest.approx(d_star / (1 + s_rel * norm.ppf(1e-6)), rel=1e-12)


def test_thickness_sensitivity_of_the_tail():
    p = flip_probability(TEN_YEARS, fg(np.array([5.1, 5.2])))
    np.testing.assert_allclose(p, [5.4e-6, 3.6e-7], rtol=0.05)
    assert math.log10(p[0] / p[1]) > 1.0  # ~1.2 decades per angstrom, steeper than the bare 0.55


def test_model_a_is_the_exact_gaussian_tail():
    """P = Phi((d* - d)/sigma), with d* found independently by brentq on retention_time_s."""
    d_star = optimize.brentq(lambda d: math.log(float(retention_time_s(fg(d))) / TEN_YEARS), 3.0, 6.0, xtol=1e-12)
    for d_bar in (4.2, 4.6, 5.0):
        expected = norm.cdf((d_star - d_bar) / (0.03 * d_bar))
        assert float(flip_probability(TEN_YEARS, fg(d_bar))) == pytest.approx(expected, rel=1e-8)
    # a wrong spread (absolute 0.03 nm instead of 3 %) is rejected
    wrong = norm.cdf((d_star - 4.6) / 0.03)
    assert abs(float(flip_probability(TEN_YEARS, fg(4.6))) - wrong) > 0.05


@pytest.mark.statistical
def test_model_a_against_monte_carlo_thicknesses():
    """Sample per-cell thicknesses, count cells whose own retention is shorter than 10 years."""
    rng = np.random.default_rng(20240601)
    n, d_bar = 400, 4.6
    d = rng.normal(d_bar, 0.03 * d_bar, n)
    flipped = np.mean(retention_time_s(fg(d)) < TEN_YEARS)
    p = float(flip_probability(TEN_YEARS, fg(d_bar)))
    sd = math.sqrt(p * (1 - p) / n)
    assert abs(flipped - p) <= 4.5 * sd
    # a wrong model (twice the spread) is rejected by the same tolerance
    assert abs(flipped - float(flip_probability(TEN_YEARS, fg(d_bar), sigma_thickness_rel=0.06))) > 4.5 * sd


def test_round_trip_thickness_for():
    for model in ("variability", "poisson"):
        for d in (4.7, 5.3):
            p = float(flip_probability(TEN_YEARS, fg(d), model=model))
            assert float(thickness_for(p, TEN_YEARS, fg(5.0), model=model)) == pytest.approx(d, abs=1e-6)
    # with a barrier spread the general solver is used
    p = float(flip_probability(TEN_YEARS, fg(5.2), sigma_barrier_eV=0.05))
    assert float(thickness_for(p, TEN_YEARS, fg(5.0), sigma_barrier_eV=0.05)) == pytest.approx(5.2, abs=1e-6)


def test_barrier_spread_widens_the_tail():
    p0 = float(flip_probability(TEN_YEARS, fg(5.2)))
    p1 = float(flip_probability(TEN_YEARS, fg(5.2), sigma_barrier_eV=0.05))
    assert p1 > p0


def test_model_b_closed_form_and_required_tau():
    c = fg(5.0)
    tau = float(retention_time_s(c))
    t = np.array([1e-6, 1.0, 1e6]) * tau
    np.testing.assert_allclose(flip_probability(t, c, model="poisson"), -np.expm1(-t / tau), rtol=1e-12)
    # tau_req for 10 years at 1e-6 is 3.16e14 s
    d = float(thickness_for(1e-6, TEN_YEARS, c, model="poisson"))
    assert float(retention_time_s(fg(d))) == pytest.approx(3.16e14, rel=2e-3)


# -- Model C --------------------------------------------------------------------------------------------------------
def counting_cell(n_stored, n_sense, d=2.5):
    """A cell of fixed C = 10.5 q / V storing floor(10.5 V0) electrons."""
    cap = 10.5 * ELEMENTARY_CHARGE_C
    return StorageCell(Oxide.from_material("SiO2", d), tunnel_area_m2=100e-18, capacitance_F=cap,
                       v_stored_V=(n_stored + 0.2) / 10.5, v_sense_V=(n_sense + 0.2) / 10.5)


def escape_rate(cell, n):
    v = n * ELEMENTARY_CHARGE_C / float(cell.capacitance_F)
    return float(cell.tunnel_area_m2) * float(current_density_A_per_m2(v, cell.oxide, **SI_LIKE)) / ELEMENTARY_CHARGE_C


def test_counting_with_one_escape_is_poisson():
    c = counting_cell(10, 9)
    lam = escape_rate(c, 10)
    t = np.array([1e-9, 1e-3, 0.3, 1.0, 5.0]) / lam
    np.testing.assert_allclose(flip_probability(t, c, model="counting"), -np.expm1(-lam * t), rtol=1e-10)


def test_counting_two_escapes_hypoexponential_and_small_t_series():
    c = counting_cell(10, 8)
    l1, l2 = escape_rate(c, 10), escape_rate(c, 9)
    t = np.array([0.1, 1.0, 4.0]) / l2
    exact = 1 - (l2 * np.exp(-l1 * t) - l1 * np.exp(-l2 * t)) / (l2 - l1)
    np.testing.assert_allclose(flip_probability(t, c, model="counting"), exact, rtol=1e-9)
    # far tail: P ~ t^2 l1 l2 / 2, where 1 - (...) would cancel to nothing
    tiny = 1e-12 / l1
    assert float(flip_probability(tiny, c, model="counting")) == pytest.approx(tiny**2 * l1 * l2 / 2, rel=1e-6)


def test_counting_mean_tends_to_retention_time():
    errs = [abs(float(counting_mean_time_s(fg(4.4, width_nm=w)) / retention_time_s(fg(4.4, width_nm=w))) - 1)
            for w in (20.0, 40.0, 80.0)]
    assert errs[0] > errs[1] > errs[2] and errs[2] < 0.005


def test_counting_shot_noise_quantile():
    """97-electron cell: the 1e-6 quantile of the time to flip sits at 0.30 E[S]."""
    c = fg(4.4)
    mean = float(counting_mean_time_s(c))
    t_q = optimize.brentq(lambda lt: float(log_flip_probability(math.exp(lt), c, "counting")) - math.log(1e-6),
                          math.log(mean) - 5, math.log(mean), xtol=1e-6)
    assert math.exp(t_q) / mean == pytest.approx(0.30, abs=0.01)


def test_counting_refuses_huge_cells():
    with pytest.raises(PhysicsDomainError, match="variability"):
        flip_probability(1.0, fg(4.4, width_nm=200.0), model="counting")


# -- rates ----------------------------------------------------------------------------------------------------------
def test_flip_rates_asymmetry_and_symmetric_average():
    c = fg(4.8)
    p_c = float(flip_probability(TEN_YEARS, c))
    p10, p01 = flip_rates(TEN_YEARS, c, eta_up=0.1)
    assert (float(p10), float(p01)) == pytest.approx((p_c, 0.1 * p_c), rel=1e-12)
    p10, p01 = flip_rates(TEN_YEARS, c, eta_up=0.1, charged_bit=0)
    assert (float(p10), float(p01)) == pytest.approx((0.1 * p_c, p_c), rel=1e-12)
    assert float(symmetric_rate(0.2, 0.0)) == pytest.approx(0.1)
    assert float(symmetric_rate(0.2, 0.1, frac_ones=0.75)) == pytest.approx(0.175)
    with pytest.raises(InputError, match="charged_bit"):
        flip_rates(1.0, c, charged_bit=2)
    with pytest.raises(InputError, match="eta_up"):
        flip_rates(1.0, c, eta_up=-0.1)


def test_plane_rates_per_plane_cells():
    cells = [fg(d) for d in np.linspace(4.9, 5.6, 8)]
    rates = plane_rates(TEN_YEARS, cells, eta_up=0.5)
    assert isinstance(rates, FlipRates) and rates.bits == 8
    assert np.all(np.diff(rates.p_down) < 0)
    np.testing.assert_allclose(rates.p_up, 0.5 * rates.p_down, rtol=1e-12)
    assert rates.p_down[0] == pytest.approx(float(flip_probability(TEN_YEARS, cells[0])), rel=1e-12)
    with pytest.raises(PhysicsDomainError, match="no information"):
        plane_rates(TEN_YEARS, [fg(3.5), fg(5.0)])
    with pytest.raises(InputError, match="len"):
        plane_rates(TEN_YEARS, [fg(5.0)])


def test_memory_flip_rates():
    r = memory_flip_rates("SiO2", thickness_nm=4.6, years=10, bits=4)
    p = float(flip_probability(TEN_YEARS, fg(4.6)))
    assert r.bits == 4 and r.p_down == pytest.approx([p] * 4) and np.all(r.p_up == 0)
    s = memory_flip_rates("SiO2", thickness_nm=4.6, years=10, symmetric=True, eta_up=0.2)
    assert s.is_symmetric and s.p_down[0] == pytest.approx(0.6 * p, rel=1e-12)
    up = memory_flip_rates("SiO2", thickness_nm=4.6, years=10, charged_bit=0)
    assert up.p_up[0] == pytest.approx(p) and up.p_down[0] == 0
    dram = memory_flip_rates("SiO2", thickness_nm=3.0, years=1e-3, cell="dram")
    assert 0 <= dram.p_down[0] < 1
    with pytest.raises(PhysicsDomainError, match=r"thickness_nm >= 5\.16"):
        memory_flip_rates("SiO2", thickness_nm=3.5, years=10)
    with pytest.raises(PhysicsDomainError, match="no information"):
        memory_flip_rates("SiO2", thickness_nm=4.0, years=10, symmetric=True, eta_up=1.0)
    with pytest.raises(InputError, match="years"):
        memory_flip_rates("SiO2", thickness_nm=4.6, years=0)
    with pytest.raises(InputError, match="cell"):
        memory_flip_rates("SiO2", thickness_nm=4.6, years=1, cell="sram")


def test_thickness_for_refuses_bad_and_unreachable_targets():
    c = fg(5.0)
    for p in (0.0, 1.0, -1e-6, 2.0):
        with pytest.raises(InputError, match="p_target"):
            thickness_for(p, TEN_YEARS, c)
    with pytest.raises(PhysicsDomainError, match="unreachable"):
        thickness_for(1e-6, TEN_YEARS, c, bracket_nm=(0.5, 4.0))
    with pytest.raises(PhysicsDomainError, match="unreachable"):
        thickness_for(1e-6, 1e40 * SECONDS_PER_YEAR, c)
    with pytest.raises(PhysicsDomainError, match="outside the bracket"):
        thickness_for(1e-6, TEN_YEARS, c, bracket_nm=(0.5, 5.0))
    with pytest.raises(PhysicsDomainError, match="sigma"):
        thickness_for(1e-6, TEN_YEARS, c, sigma_thickness_rel=0.3)
    with pytest.raises(InputError, match="model"):
        thickness_for(1e-6, TEN_YEARS, c, model="gaussian")
    with pytest.raises(InputError, match="bracket"):
        thickness_for(1e-6, TEN_YEARS, c, bracket_nm=(3.0, 1.0))


# -- properties -----------------------------------------------------------------------------------------------------
@settings(max_examples=15, deadline=None)
@given(t=st.lists(st.floats(1e-3, 1e20), min_size=1, max_size=4),
       d=st.lists(st.floats(2.5, 8.0), min_size=1, max_size=3),
       model=st.sampled_from(["variability", "poisson"]),
       s_rel=st.floats(0.0, 0.1))
def test_flip_probability_broadcasts_is_monotone_and_in_range(t, d, model, s_rel):
    tt = np.sort(np.array(t))[:, None]
    dd = np.sort(np.array(d))[None, :]
    p = flip_probability(tt, fg(dd), model=model, sigma_thickness_rel=s_rel)
    assert p.shape == (len(t), len(d))
    assert np.all((p >= 0) & (p <= 1))
    assert np.all(np.diff(p, axis=0) >= 0)  # more time, more flips
    assert np.all(np.diff(p, axis=1) <= 0)  # thicker oxide, fewer flips
    i, k = len(t) - 1, 0
    assert float(flip_probability(tt[i, 0], fg(dd[0, k]), model=model, sigma_thickness_rel=s_rel)) == p[i, k]


@settings(max_examples=10, deadline=None)
@given(t=st.floats(1e-2, 1e12), d=st.floats(2.0, 3.5), eta=st.floats(0, 1))
def test_counting_and_rates_stay_probabilities(t, d, eta):
    c = fg(d, width_nm=12.0)
    p = float(flip_probability(t, c, model="counting"))
    assert 0.0 <= p <= 1.0
    p10, p01 = flip_rates(t, c, eta_up=eta, model="counting")
    assert 0.0 <= float(p01) <= float(p10) <= 1.0
