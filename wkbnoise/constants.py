"""Physical constants in SI units: CODATA 2022 values, as in :mod:`scipy.constants` (q, h and k_B are exact).

They are written out rather than imported: ``scipy.constants`` costs 0.13 s of every command's start-up
(tests/test_constants.py checks every value against it).

Every name carries its unit. ``PLANCK_J_S`` is h; ``HBAR_J_S`` is h / (2 pi): public tunnelling code that
imports ``scipy.constants.Planck as hbar`` is off by 2 pi in every exponent (docs/physics.md).
"""

from __future__ import annotations

import math

__all__ = [
    "HBAR_J_S",
    "PLANCK_J_S",
    "ELECTRON_MASS_KG",
    "ELEMENTARY_CHARGE_C",
    "BOLTZMANN_J_PER_K",
    "VACUUM_PERMITTIVITY_F_PER_M",
    "SECONDS_PER_YEAR",
    "K0_PER_NM_SQRT_EV",
    "RICHARDSON_A_PER_M2_K2",
    "FN_A_PREFACTOR_A_PER_V2",
    "FN_B_PREFACTOR_V_PER_M",
]

#: Planck constant h [J s] (exact).
PLANCK_J_S: float = 6.62607015e-34
#: Reduced Planck constant h / (2 pi) [J s].
HBAR_J_S: float = PLANCK_J_S / (2.0 * math.pi)
#: Electron rest mass [kg] (CODATA 2022).
ELECTRON_MASS_KG: float = 9.1093837139e-31
#: Elementary charge [C] (exact).
ELEMENTARY_CHARGE_C: float = 1.602176634e-19
#: Boltzmann constant [J / K] (exact).
BOLTZMANN_J_PER_K: float = 1.380649e-23
#: Vacuum permittivity [F / m] (CODATA 2022).
VACUUM_PERMITTIVITY_F_PER_M: float = 8.8541878188e-12
#: Julian year (365.25 days) [s]: "10 years" = 3.156e8 s.
SECONDS_PER_YEAR: float = 365.25 * 86400.0

#: sqrt(2 m0 q) / hbar [1 / (nm eV^0.5)]: the decay constant is kappa = K0 sqrt(m_r U[eV]) (5.1232).
K0_PER_NM_SQRT_EV: float = math.sqrt(2.0 * ELECTRON_MASS_KG * ELEMENTARY_CHARGE_C) / HBAR_J_S * 1e-9
#: Richardson constant 4 pi q m0 k_B^2 / h^3 [A m^-2 K^-2] (1.2017e6).
RICHARDSON_A_PER_M2_K2: float = (
    4.0 * math.pi * ELEMENTARY_CHARGE_C * ELECTRON_MASS_KG * BOLTZMANN_J_PER_K**2 / PLANCK_J_S**3
)
#: q^2 / (8 pi h) [A / V^2]; the Fowler-Nordheim A is this / (m_r phi_B[eV]) (1.5414e-6).
FN_A_PREFACTOR_A_PER_V2: float = ELEMENTARY_CHARGE_C**2 / (8.0 * math.pi * PLANCK_J_S)
#: 8 pi sqrt(2 m0) q^0.5 / (3 h) [V / (m eV^1.5)]; the FN B is this sqrt(m_r) phi_B[eV]^1.5 (6.8309e9).
FN_B_PREFACTOR_V_PER_M: float = (
    8.0 * math.pi * math.sqrt(2.0 * ELECTRON_MASS_KG) * ELEMENTARY_CHARGE_C**1.5
    / (3.0 * ELEMENTARY_CHARGE_C * PLANCK_J_S)
)
