"""WKB transmission against the exact references (spec/physics.md sections 0-2 and 9)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.constants as sc
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from wkbnoise import InputError, PhysicsDomainError
from wkbnoise.constants import (
    FN_A_PREFACTOR_A_PER_V2,
    FN_B_PREFACTOR_V_PER_M,
    HBAR_J_S,
    K0_PER_NM_SQRT_EV,
    PLANCK_J_S,
    RICHARDSON_A_PER_M2_K2,
)
from wkbnoise.physics import Oxide, barrier_integral, log_transmission, transmission

SIO2 = dict(barrier_eV=3.1, mass_ratio=0.5)


# -- constants -------------------------------------------------------------------------------------------------
def test_derived_constants():
    assert K0_PER_NM_SQRT_EV == pytest.approx(5.1232, abs=1e-4)
    assert RICHARDSON_A_PER_M2_K2 == pytest.approx(1.2017e6, rel=1e-4)
    assert FN_A_PREFACTOR_A_PER_V2 == pytest.approx(1.5414e-6, rel=1e-4)
    assert FN_B_PREFACTOR_V_PER_M == pytest.approx(6.8309e9, rel=1e-4)
    assert HBAR_J_S == pytest.approx(PLANCK_J_S / (2 * math.pi), rel=1e-15)
    # the pitfall: Planck-as-hbar gives a K0 2 pi too small, which the check rejects
    wrong_k0 = math.sqrt(2 * sc.m_e * sc.e) / sc.Planck * 1e-9
    assert abs(wrong_k0 - 5.1232) > 1e-4


@pytest.mark.parametrize("phi, m, decades_per_angstrom", [
    (3.1, 0.5, 0.554), (3.2, 0.42, 0.516), (2.1, 0.5, 0.456), (1.5, 0.2, 0.244), (1.5, 0.1, 0.172)])
def test_low_bias_decay_rates(phi, m, decades_per_angstrom):
    ox = Oxide(thickness_nm=0.1, barrier_eV=phi, mass_ratio=m)  # 1 angstrom
    assert -float(log_transmission(0.0, ox)) / math.log(10) == pytest.approx(decades_per_angstrom, abs=6e-4)


# -- WKB formula ---------------------------------------------------------------------------------------------------
def test_wkb_trapezoid_matches_textbook_form():
    """(b) in the 3/2-power form, written out independently of the stable form."""
    ox = Oxide(thickness_nm=2.0, **SIO2)
    e, v = 0.1, 1.0
    a, b = 3.1 - e, 3.1 - e - v
    ref = -(4 * K0_PER_NM_SQRT_EV * math.sqrt(0.5) * 2.0 / (3 * v)) * (a**1.5 - b**1.5)
    assert float(log_transmission(e, ox, v)) == pytest.approx(ref, rel=1e-13)


def test_wkb_triangle_is_fowler_nordheim():
    """(c): ln T = -4 sqrt(2 m_ox) (phi - E)^1.5 / (3 hbar q F), with SI constants."""
    ox = Oxide(thickness_nm=5.0, **SIO2)
    e, v = 0.2, 5.0
    f = v / 5e-9
    ref = -4 * math.sqrt(2 * 0.5 * sc.m_e) * ((3.1 - e) * sc.e) ** 1.5 / (3 * sc.hbar * sc.e * f)
    assert float(log_transmission(e, ox, v)) == pytest.approx(ref, rel=1e-12)


def test_wkb_continuous_across_dt_fn_and_at_zero_bias():
    ox = Oxide(thickness_nm=3.0, **SIO2)
    e = 0.1
    v_edge = 3.1 - e
    below, above = log_transmission(e, ox, v_edge - 1e-9), log_transmission(e, ox, v_edge + 1e-9)
    assert abs(float(below - above)) < 1e-7
    rect = -2 * K0_PER_NM_SQRT_EV * math.sqrt(0.5 * (3.1 - e)) * 3.0
    for v in (1e-9, 1e-12, 0.0, -1e-9):
        assert float(log_transmission(e, ox, v)) == pytest.approx(rect, rel=1e-9)
    # first order in V: d lnT / dV at 0 is K0 sqrt(m) d / (2 sqrt(a)) (the mean of sqrt over the tilt)
    slope = K0_PER_NM_SQRT_EV * math.sqrt(0.5) * 3.0 / (2 * math.sqrt(3.1 - e))
    assert float(log_transmission(e, ox, 1e-6) - rect) / 1e-6 == pytest.approx(slope, rel=1e-4)
    assert float(log_transmission(3.5, ox, 1.0)) == 0.0  # over the barrier: T = 1


def test_barrier_integral_limits():
    assert float(barrier_integral(2.0, 2.0)) == pytest.approx(math.sqrt(2.0), rel=1e-15)
    assert float(barrier_integral(-1.0, -2.0)) == 0.0
    # a > 0 >= b: (2/3) a^1.5 / (a - b)
    assert float(barrier_integral(2.0, -1.0)) == pytest.approx((2 / 3) * 2**1.5 / 3, rel=1e-15)


# -- exact references ---------------------------------------------------------------------------------------------
AIRY_TABLE = [  # (E eV, V_ox, d nm, T_exact, ln(T_exact / T_WKB))
    (0.1, 1.0, 1.5, 2.96e-8, -0.18), (0.1, 1.0, 3.0, 1.05e-15, -0.18), (0.1, 1.0, 5.0, 1.22e-25, -0.18),
    (0.1, 0.5, 1.5, 9.41e-9, -0.46), (0.05, 0.3, 1.0, 1.49e-6, -1.08), (0.5, 1.0, 2.0, 1.68e-9, 0.75),
    (0.1, 5.0, 5.0, 5.89e-12, -0.76),
]


@pytest.mark.parametrize("e, v, d, t_exact, log_ratio", AIRY_TABLE)
def test_airy_table_and_tmm_agreement(e, v, d, t_exact, log_ratio):
    ox = Oxide(thickness_nm=d, **SIO2)
    t_airy = float(transmission(e, ox, v, method="airy"))
    t_tmm = float(transmission(e, ox, v, method="tmm", n_slices=400))
    assert t_airy == pytest.approx(t_exact, rel=5e-3)
    assert abs(t_tmm / t_airy - 1) <= 1e-4
    dln = math.log(t_airy) - float(log_transmission(e, ox, v))
    assert dln == pytest.approx(log_ratio, abs=0.01)
    assert abs(dln) <= 1.5


def test_tmm_error_falls_as_n_squared():
    ox = Oxide(thickness_nm=3.0, **SIO2)
    t_airy = float(transmission(0.1, ox, 1.0, method="airy"))
    errs = [abs(float(transmission(0.1, ox, 1.0, method="tmm", n_slices=n)) / t_airy - 1) for n in (50, 100, 200)]
    assert errs[0] < 3e-5
    assert 3.5 < errs[0] / errs[1] < 4.5 and 3.5 < errs[1] / errs[2] < 4.5


def test_wkb_vs_exact_slope_in_thickness():
    """The dropped prefactor does not depend on d: d lnT/d d agrees within 1 %."""
    e, v = 0.1, 1.0
    ln_exact = [math.log(float(transmission(e, Oxide(thickness_nm=d, **SIO2), v, method="airy"))) for d in (3.0, 5.0)]
    ln_wkb = [float(log_transmission(e, Oxide(thickness_nm=d, **SIO2), v)) for d in (3.0, 5.0)]
    slope_exact, slope_wkb = ln_exact[1] - ln_exact[0], ln_wkb[1] - ln_wkb[0]
    assert slope_exact == pytest.approx(-22.87, abs=0.01)
    assert slope_wkb == pytest.approx(slope_exact, rel=0.01)


def test_rectangle_exact_ratio():
    u, d = 3.1, 2.0
    ox = Oxide(thickness_nm=d, barrier_eV=u, mass_ratio=0.5)
    for e in (0.1, 0.5, 1.55, 2.5):
        ratio = float(transmission(e, ox, 0.0, method="rectangle", electrode_mass_ratio=0.5)
                      / transmission(e, ox, 0.0))
        assert ratio == pytest.approx(16 * e * (u - e) / u**2, rel=0.01)
    assert float(transmission(1.55, ox, 0.0, method="rectangle", electrode_mass_ratio=0.5)
                 / transmission(1.55, ox, 0.0)) == pytest.approx(3.999, abs=1e-3)
    # TMM of a flat barrier is exact for any number of slices; the mass step enters both the same way
    for m_el in (0.5, 1.0):
        t_rect = transmission(0.3, ox, 0.0, method="rectangle", electrode_mass_ratio=m_el)
        t_tmm = transmission(0.3, ox, 0.0, method="tmm", electrode_mass_ratio=m_el, n_slices=7)
        assert float(t_tmm) == pytest.approx(float(t_rect), rel=1e-9)


def test_exact_methods_agree_with_a_shifted_reference():
    """Moving the energy zero (band_bottom_eV) and the barrier together changes nothing."""
    ox = Oxide(thickness_nm=2.0, **SIO2)
    shifted = Oxide(thickness_nm=2.0, barrier_eV=2.1, mass_ratio=0.5)
    for method in ("airy", "tmm"):
        t0 = float(transmission(0.2, ox, 1.0, method=method))
        t1 = float(transmission(-0.8, shifted, 1.0, method=method, band_bottom_eV=-1.0))
        assert t1 == pytest.approx(t0, rel=1e-9)


def test_wkb_check_rejects_a_wrong_answer():
    """A WKB exponent built with h instead of hbar is off by 2 pi and fails |dlnT| <= 1.5."""
    ox = Oxide(thickness_nm=3.0, **SIO2)
    wrong = float(log_transmission(0.1, ox, 1.0)) * HBAR_J_S / PLANCK_J_S
    exact = math.log(float(transmission(0.1, ox, 1.0, method="airy")))
    assert abs(wrong - exact) > 1.5


def test_bad_inputs_raise():
    ox = Oxide(thickness_nm=2.0, **SIO2)
    with pytest.raises(InputError, match="method"):
        transmission(0.1, ox, 1.0, method="exact")
    with pytest.raises(PhysicsDomainError, match="v_ox_V > 0"):
        transmission(0.1, ox, 0.0, method="airy")
    with pytest.raises(PhysicsDomainError, match="v_ox_V=0"):
        transmission(0.1, ox, 1.0, method="rectangle")
    with pytest.raises(PhysicsDomainError, match="propagating"):
        transmission(-0.1, ox, 1.0, method="tmm")
    with pytest.raises(InputError, match="n_slices"):
        transmission(0.1, ox, 1.0, method="tmm", n_slices=0)
    with pytest.raises(InputError, match="oxide"):
        log_transmission(0.1, "SiO2")
    with pytest.raises(InputError, match="finite"):
        log_transmission(np.nan, ox)


# -- properties ----------------------------------------------------------------------------------------------------
finite = dict(allow_nan=False, allow_infinity=False)


@settings(max_examples=40, deadline=None)
@given(e=hnp.arrays(np.float64, hnp.array_shapes(max_dims=2, max_side=4), elements=st.floats(-2, 6, **finite)),
       v=st.floats(-4, 8, **finite),
       d=hnp.arrays(np.float64, st.just((3, 1, 1)), elements=st.floats(0.3, 12, **finite)))
def test_wkb_broadcasts_and_stays_a_probability(e, v, d):
    ox = Oxide(thickness_nm=d, **SIO2)
    ln_t = log_transmission(e, ox, v)
    assert ln_t.shape == np.broadcast_shapes(e.shape, d.shape)
    assert np.all(ln_t <= 0.0) and np.all(np.isfinite(ln_t))
    t = transmission(e, ox, v)
    assert np.all((t >= 0) & (t <= 1))
    # element by element equals the scalar call
    for idx in np.ndindex(*ln_t.shape):
        scalar = log_transmission(np.broadcast_to(e, ln_t.shape)[idx], Oxide(float(np.broadcast_to(d, ln_t.shape)[idx]), **SIO2), v)
        assert float(scalar) == ln_t[idx]


@settings(max_examples=25, deadline=None)
@given(e=st.floats(0.01, 2.5, **finite), v=st.floats(0.05, 6, **finite), d=st.floats(1.0, 4.0, **finite))
def test_exact_transmission_is_a_probability(e, v, d):
    ox = Oxide(thickness_nm=d, **SIO2)
    t = float(transmission(e, ox, v, method="airy"))
    assert 0.0 <= t <= 1.0
    assert float(transmission(e, ox, v, method="tmm", n_slices=100)) == pytest.approx(t, rel=2e-3)
