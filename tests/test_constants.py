"""The written-out physical constants equal scipy.constants (CODATA) to the last bit, and the derived ones
equal their textbook values."""

import math

import pytest
import scipy.constants as sc

from wkbnoise import constants as c


@pytest.mark.parametrize("ours, theirs", [
    ("PLANCK_J_S", "h"), ("HBAR_J_S", "hbar"), ("ELECTRON_MASS_KG", "m_e"), ("ELEMENTARY_CHARGE_C", "e"),
    ("BOLTZMANN_J_PER_K", "k"), ("VACUUM_PERMITTIVITY_F_PER_M", "epsilon_0"), ("SECONDS_PER_YEAR", "Julian_year"),
])
def test_constant_equals_scipy(ours, theirs):
    assert getattr(c, ours) == getattr(sc, theirs)


def test_derived_constants():
    # Richardson 1.2017e6 A m^-2 K^-2, decay constant 5.1232 nm^-1 eV^-0.5, FN prefactors 1.5414e-6 and 6.8309e9
    assert c.RICHARDSON_A_PER_M2_K2 == pytest.approx(1.20173e6, rel=1e-5)
    assert c.K0_PER_NM_SQRT_EV == pytest.approx(5.12317, rel=1e-5)
    assert c.FN_A_PREFACTOR_A_PER_V2 == pytest.approx(1.54142e-6, rel=1e-5)
    assert c.FN_B_PREFACTOR_V_PER_M == pytest.approx(6.83089e9, rel=1e-5)
    assert c.HBAR_J_S * 2 * math.pi == pytest.approx(c.PLANCK_J_S, rel=1e-15)
