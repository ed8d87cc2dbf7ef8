"""Tunnelling transmission through a linear (rectangular, trapezoidal, triangular) barrier.

:func:`log_transmission` is the WKB result in natural-log space, one formula for every regime
(docs/physics.md). :func:`transmission` adds three exact references as methods: the rectangle
formula (V_ox = 0), Airy functions (any V_ox > 0), and the transfer matrix in its determinant form
(section 2). Energies are in eV, measured from the cathode electron reference.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from ..constants import K0_PER_NM_SQRT_EV
from ..errors import InputError, PhysicsDomainError
from .cells import Oxide

__all__ = ["log_transmission", "transmission", "barrier_integral"]

_METHODS = ("wkb", "rectangle", "airy", "tmm")


def _as_float_array(value, name: str) -> np.ndarray:
    if isinstance(value, bool):
        raise InputError(f"{name}={value!r} must be a number or an array of numbers.")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}={value!r} must be a number or an array of numbers.") from exc
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name} must be finite, got {value!r}.")
    return arr


def _check_oxide(oxide) -> Oxide:
    if not isinstance(oxide, Oxide):
        raise InputError(f"oxide={oxide!r} must be an Oxide (e.g. Oxide.from_material('SiO2', 2.0)).")
    return oxide


def barrier_integral(a_eV, b_eV) -> np.ndarray:
    """(2/3) (max(a,0)^1.5 - max(b,0)^1.5) / (a - b) [eV^0.5]: the WKB integral of sqrt(U - E) over a
    unit-length linear barrier whose height above E goes from ``a`` (cathode) to ``b`` (anode).

    Uses the 0/0-free form (2/3)(a + sqrt(ab) + b)/(sqrt(a) + sqrt(b)) when a, b > 0, so the result is
    continuous across the direct-tunnelling / Fowler-Nordheim boundary (b = 0) and at a = b (rectangle).
    """
    a = np.asarray(a_eV, dtype=np.float64)
    b = np.asarray(b_eV, dtype=np.float64)
    ap, bp = np.maximum(a, 0.0), np.maximum(b, 0.0)
    sa, sb = np.sqrt(ap), np.sqrt(bp)
    both = (a > 0.0) & (b > 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        stable = (2.0 / 3.0) * (ap + sa * sb + bp) / (sa + sb)
        direct = (2.0 / 3.0) * (ap * sa - bp * sb) / (a - b)
    out = np.where(both, stable, np.where((a > 0.0) | (b > 0.0), direct, 0.0))
    return out


def log_transmission(energy_eV, oxide: Oxide, v_ox_V=0.0) -> np.ndarray:
    """WKB transmission ln T(E) through the oxide's linear barrier; never underflows.

    ``ln T = -2 K0 sqrt(m_r) d I(a, b)`` with a = phi_B - E and b = a - V_ox (see :func:`barrier_integral`):
    rectangle at V_ox = 0, trapezoid (direct tunnelling) for 0 < V_ox < phi_B - E, triangle
    (Fowler-Nordheim) beyond, and 0 (T = 1) when E is above the barrier everywhere. A negative V_ox
    tilts the barrier the other way (the formula covers it).

    Parameters
    ----------
    energy_eV : float or ndarray
        Longitudinal electron energy E [eV] from the cathode reference.
    oxide : Oxide
        The barrier (its fields broadcast with the other arguments).
    v_ox_V : float or ndarray
        Voltage across the oxide [V].

    Returns
    -------
    ndarray of float64
        ln T [dimensionless], <= 0.

    Examples
    --------
    >>> ox = Oxide(thickness_nm=1.0, barrier_eV=3.1, mass_ratio=0.5)
    >>> round(float(-log_transmission(0.0, ox) / np.log(10) / 10), 3)   # decades per angstrom
    0.554
    """
    ox = _check_oxide(oxide)
    e = _as_float_array(energy_eV, "energy_eV")
    v = _as_float_array(v_ox_V, "v_ox_V")
    a = ox.barrier_eV - e
    b = a - v
    return -2.0 * K0_PER_NM_SQRT_EV * np.sqrt(ox.mass_ratio) * ox.thickness_nm * barrier_integral(a, b)


def transmission(energy_eV, oxide: Oxide, v_ox_V=0.0, method: str = "wkb", electrode_mass_ratio=1.0,
                 n_slices: int = 400, band_bottom_eV=0.0) -> np.ndarray:
    """Transmission probability T(E) through the oxide barrier, by WKB or by an exact reference.

    Parameters
    ----------
    energy_eV : float or ndarray
        Electron energy E [eV] from the cathode reference.
    oxide : Oxide
        The barrier.
    v_ox_V : float or ndarray
        Voltage across the oxide [V]; ``"rectangle"`` needs 0, ``"airy"`` needs > 0.
    method : {"wkb", "rectangle", "airy", "tmm"}
        ``"wkb"``: ``exp(log_transmission)``. ``"rectangle"``: exact square barrier with a mass step
        (BenDaniel-Duke matching), E below the barrier. ``"airy"``: exact trapezoid/triangle with Airy
        functions (``scipy.special.airye``, rescaled unknowns). ``"tmm"``: transfer matrix over
        ``n_slices`` piecewise-constant slices, T from ``|M22|^-2`` and the determinant identity.
    electrode_mass_ratio : float or ndarray
        Electron mass in both electrodes m_el / m0 [dimensionless] (exact methods only).
    n_slices : int
        Number of slices for ``"tmm"``.
    band_bottom_eV : float or ndarray
        Electrode band bottom [eV] (exact methods only): the lead's kinetic energy is
        ``E - band_bottom_eV`` on the cathode and ``E + V_ox - band_bottom_eV`` on the anode.

    Returns
    -------
    ndarray of float64
        T [dimensionless, in [0, 1]].

    Raises
    ------
    InputError
        Unknown method, or bad ``n_slices``.
    PhysicsDomainError
        The exact method cannot treat the case (electron below a band bottom, V_ox of the wrong sign
        for the method, E above the rectangle).

    Notes
    -----
    docs/physics.md (R1, R2, R3); the exact/WKB ratio of the rectangle tends to
    16 E (U - E) / U^2 for equal masses.
    """
    if method not in _METHODS:
        raise InputError(f"method={method!r} must be one of {', '.join(_METHODS)}.")
    ox = _check_oxide(oxide)
    if method == "wkb":
        return np.exp(log_transmission(energy_eV, ox, v_ox_V))
    e = _as_float_array(energy_eV, "energy_eV")
    v = _as_float_array(v_ox_V, "v_ox_V")
    m_el = _as_float_array(electrode_mass_ratio, "electrode_mass_ratio")
    if np.any(m_el <= 0):
        raise InputError(f"electrode_mass_ratio={electrode_mass_ratio!r} must be > 0.")
    e_kin = e - _as_float_array(band_bottom_eV, "band_bottom_eV")
    if np.any(e_kin <= 0) or np.any(e_kin + v <= 0):
        raise PhysicsDomainError(
            "the exact transmission needs a propagating electron in both leads: energy_eV - band_bottom_eV "
            "and energy_eV + v_ox_V - band_bottom_eV must be > 0; lower band_bottom_eV or raise energy_eV."
        )
    if method == "rectangle":
        return np.exp(_log_t_rectangle(e, e_kin, ox, v, m_el))
    if method == "airy":
        return _t_airy(e, e_kin, ox, v, m_el)
    if isinstance(n_slices, bool) or not isinstance(n_slices, int | np.integer) or n_slices < 1:
        raise InputError(f"n_slices={n_slices!r} must be a positive integer (400 gives ~1e-7 relative error).")
    return _t_tmm(e, e_kin, ox, v, m_el, int(n_slices))


def _log_t_rectangle(e, e_kin, ox: Oxide, v, m_el) -> np.ndarray:
    """ln T of R1: exact square barrier (phi_B - E above the electron), mass step."""
    if np.any(v != 0.0):
        raise PhysicsDomainError("method='rectangle' is the V_ox = 0 barrier: pass v_ox_V=0 or use 'airy'/'tmm'.")
    depth = np.asarray(ox.barrier_eV, dtype=np.float64) - e  # U - E
    if not np.all(depth > 0):
        raise PhysicsDomainError("method='rectangle' needs E below the barrier; use 'tmm' above it.")
    k = K0_PER_NM_SQRT_EV * np.sqrt(m_el * e_kin)
    kap = K0_PER_NM_SQRT_EV * np.sqrt(ox.mass_ratio * depth)
    kt, kapt = k / m_el, kap / ox.mass_ratio
    c = (kapt**2 - kt**2) / (2.0 * kt * kapt)
    x = kap * ox.thickness_nm
    em = np.exp(-2.0 * x)
    # cosh^2 x + c^2 sinh^2 x = e^{2x} [(1 + e^{-2x})^2 + c^2 (1 - e^{-2x})^2] / 4
    return -2.0 * x - np.log(0.25 * ((1.0 + em) ** 2 + c**2 * (1.0 - em) ** 2))


def _scaled_airy(z):
    """(eAi, eAi', eBi, eBi', zeta) with Ai = eAi e^-zeta, Bi = eBi e^zeta; zeta = (2/3) z^1.5 for z > 0, else 0."""
    z = np.asarray(z, dtype=np.float64)
    pos = z > 0
    eai, eaip, ebi, ebip = special.airye(np.where(pos, z, 1.0))
    ai, aip, bi, bip = special.airy(np.where(pos, -1.0, z))
    zeta = np.where(pos, (2.0 / 3.0) * np.maximum(z, 0.0) ** 1.5, 0.0)
    return (np.where(pos, eai, ai), np.where(pos, eaip, aip), np.where(pos, ebi, bi), np.where(pos, ebip, bip), zeta)


def _t_airy(e, e_kin, ox: Oxide, v, m_el) -> np.ndarray:
    """R2: exact linear barrier, Airy functions inside, plane waves outside; 4x4 solve per point."""
    if np.any(v <= 0.0):
        raise PhysicsDomainError("method='airy' needs v_ox_V > 0 (a tilted barrier); use 'rectangle' at 0.")
    e, e_kin, v, m_el, d, phi, m_b = np.broadcast_arrays(
        e, e_kin, v, m_el, np.asarray(ox.thickness_nm, float), np.asarray(ox.barrier_eV, float),
        np.asarray(ox.mass_ratio, float))
    shape = e_kin.shape
    e, e_kin, v, m_el, d, phi, m_b = (np.ravel(x) for x in (e, e_kin, v, m_el, d, phi, m_b))
    # lengths in nm, energies in eV: K0 sqrt(m eV) is in 1/nm
    k = K0_PER_NM_SQRT_EV * np.sqrt(m_el * e_kin)
    kp = K0_PER_NM_SQRT_EV * np.sqrt(m_el * (e_kin + v))
    f = v / d  # eV per nm
    alpha = (K0_PER_NM_SQRT_EV**2 * m_b * f) ** (1.0 / 3.0)  # 1/nm
    x0 = (phi - e) / f  # nm, the classical turning point U(x0) = E
    z0, zd = alpha * x0, alpha * (x0 - d)
    ai0, aip0, bi0, bip0, zeta0 = _scaled_airy(z0)
    aid, aipd, bid, bipd, zetad = _scaled_airy(zd)
    s = np.exp(zetad - zeta0)  # <= 1
    n = e_kin.size
    mat = np.zeros((n, 4, 4), dtype=np.complex128)
    rhs = np.zeros((n, 4), dtype=np.complex128)
    ik0 = 1j * k / m_el
    ikd = 1j * kp / m_el
    g = alpha / m_b
    # unknowns: r, a~ (a = a~ e^{zeta_d}), b~ (b = b~ e^{-zeta_0}), t
    mat[:, 0, 0] = 1.0
    mat[:, 0, 1] = -s * ai0
    mat[:, 0, 2] = -bi0
    rhs[:, 0] = -1.0
    mat[:, 1, 0] = -ik0
    mat[:, 1, 1] = g * s * aip0
    mat[:, 1, 2] = g * bip0
    rhs[:, 1] = -ik0
    mat[:, 2, 1] = aid
    mat[:, 2, 2] = s * bid
    mat[:, 2, 3] = -1.0
    mat[:, 3, 1] = -g * aipd
    mat[:, 3, 2] = -g * s * bipd
    mat[:, 3, 3] = -ikd
    sol = np.linalg.solve(mat, rhs[..., None])[..., 0]
    t = sol[:, 3]
    out = (kp / k) * np.abs(t) ** 2
    return out.reshape(shape)


def _t_tmm(e, e_kin, ox: Oxide, v, m_el, n_slices: int) -> np.ndarray:
    """R3: transfer matrix over piecewise-constant slices; T = (k_L/m_L)/(k_R/m_R)/|M22|^2 (det form)."""
    e, e_kin, v, m_el, d, phi, m_b = np.broadcast_arrays(
        e, e_kin, v, m_el, np.asarray(ox.thickness_nm, float), np.asarray(ox.barrier_eV, float),
        np.asarray(ox.mass_ratio, float))
    e, e_kin, v, m_el, d, phi, m_b = (np.asarray(x, dtype=np.float64) for x in (e, e_kin, v, m_el, d, phi, m_b))
    w = d / n_slices

    def wave(m, kinetic):  # complex wave number with Im >= 0 [1/nm]
        return K0_PER_NM_SQRT_EV * np.sqrt((m * kinetic).astype(np.complex128))

    k_left = wave(m_el, e_kin)
    k_right = wave(m_el, e_kin + v)
    # M = [[m11, m12], [m21, m22]], starting with the identity
    m11 = np.ones(e_kin.shape, np.complex128)
    m12 = np.zeros_like(m11)
    m21 = np.zeros_like(m11)
    m22 = np.ones_like(m11)
    k_prev, mass_prev = k_left, m_el
    for j in range(n_slices):
        u_j = phi - v * (j + 0.5) / n_slices
        k_j = wave(m_b, e - u_j)
        r = (k_prev / mass_prev) / (k_j / m_b)
        a, b = 0.5 * (1 + r), 0.5 * (1 - r)
        m11, m12, m21, m22 = a * m11 + b * m21, a * m12 + b * m22, b * m11 + a * m21, b * m12 + a * m22
        p, q = np.exp(1j * k_j * w), np.exp(-1j * k_j * w)
        m11, m12, m21, m22 = p * m11, p * m12, q * m21, q * m22
        k_prev, mass_prev = k_j, m_b
    r = (k_prev / mass_prev) / (k_right / m_el)
    a, b = 0.5 * (1 + r), 0.5 * (1 - r)
    m22 = b * m12 + a * m22
    return np.real(k_left / k_right) / np.abs(m22) ** 2
