"""Tunnelling current density through an oxide: Tsu-Esaki (the reference), Simmons, Fowler-Nordheim and
the Schuegraf-Hu direct-tunnelling closed form (docs/physics.md).

Everything is computed as ln|J| and exponentiated at the end; the public results are in A/m^2
(A/cm^2 = A/m^2 * 1e-4). Identical electrodes: J(-V) = -J(V).
"""

from __future__ import annotations

import math

import numpy as np

from ..constants import (
    BOLTZMANN_J_PER_K,
    ELECTRON_MASS_KG,
    ELEMENTARY_CHARGE_C,
    FN_A_PREFACTOR_A_PER_V2,
    FN_B_PREFACTOR_V_PER_M,
    HBAR_J_S,
    PLANCK_J_S,
)
from ..errors import InputError, PhysicsDomainError
from .cells import Oxide
from .transmission import _as_float_array, _check_oxide, log_transmission

__all__ = ["current_density_A_per_m2", "log_current_density", "fn_coefficients", "CURRENT_MODELS"]

CURRENT_MODELS = ("tsu_esaki", "simmons", "fn", "schuegraf_hu")

# Composite Gauss-Legendre grid of the Tsu-Esaki energy integral: panels between the kinks
# [band bottom, E_F - qV, E_F, E_F + 40 kT, barrier top], each cut into equal sub-panels of _GL_ORDER nodes.
_GL_ORDER = 8
_GL_X, _GL_W = np.polynomial.legendre.leggauss(_GL_ORDER)
_SUBPANELS = (24, 24, 20, 20)
_THERMAL_WINDOW_KT = 40.0
_LINEAR_SUPPLY_BELOW = 1e-6  # qV/kT below which the supply difference is linearised
_CHUNK = 4096


def fn_coefficients(oxide: Oxide) -> tuple[float | np.ndarray, float | np.ndarray]:
    """Fowler-Nordheim coefficients of ``J = A F^2 exp(-B / F)``.

    Parameters
    ----------
    oxide : Oxide
        Barrier phi_B [eV] and tunnelling mass m_r.

    Returns
    -------
    A_A_per_V2 : float or ndarray
        q^3 m0 / (8 pi h m_ox phi_B) = 1.5414e-6 / (m_r phi_B[eV]) [A/V^2].
    B_V_per_m : float or ndarray
        8 pi sqrt(2 m_ox) phi_B^1.5 / (3 q h) = 6.8309e9 sqrt(m_r) phi_B[eV]^1.5 [V/m].

    Examples
    --------
    >>> a, b = fn_coefficients(Oxide(barrier_eV=3.1, mass_ratio=0.5))
    >>> f"{a:.4e} {b:.4e}"
    '9.9447e-07 2.6364e+10'
    """
    ox = _check_oxide(oxide)
    a = FN_A_PREFACTOR_A_PER_V2 / (np.asarray(ox.mass_ratio) * np.asarray(ox.barrier_eV))
    b = FN_B_PREFACTOR_V_PER_M * np.sqrt(ox.mass_ratio) * np.asarray(ox.barrier_eV) ** 1.5
    return (float(a) if np.ndim(a) == 0 else a), (float(b) if np.ndim(b) == 0 else b)


def current_density_A_per_m2(v_ox_V, oxide: Oxide, model: str = "tsu_esaki", temperature_K=300.0,
                             electrode_mass_ratio=1.0, band_bottom_eV=-5.0) -> np.ndarray:
    """Tunnelling current density J(V_ox) through the oxide [A/m^2].

    Parameters
    ----------
    v_ox_V : float or ndarray
        Voltage across the oxide [V]; positive moves electrons cathode -> anode.
    oxide : Oxide
        The barrier (fields broadcast with ``v_ox_V``).
    model : {"tsu_esaki", "simmons", "fn", "schuegraf_hu"}
        ``"tsu_esaki"``: supply-function integral with the WKB transmission (reference; J(0) = 0,
        continuous from direct tunnelling into FN). ``"simmons"``: Simmons' 1963 intermediate-voltage
        closed form (needs |V| < phi_B; mass = the oxide's). ``"fn"``: ``A F^2 exp(-B/F)``.
        ``"schuegraf_hu"``: the direct-tunnelling closed form, FN above phi_B; it does *not* vanish as
        V -> 0 (23x too high at 10 mV), so never use it for retention.
    temperature_K : float or ndarray
        Electrode temperature [K] (Tsu-Esaki only).
    electrode_mass_ratio : float or ndarray
        Supply mass m_el / m0 (Tsu-Esaki only): 1 for a metal, 0.5 for the "Si-like" cathode.
    band_bottom_eV : float or ndarray
        Cathode band bottom relative to its Fermi level [eV], < 0 (Tsu-Esaki only): -5 for a metal,
        -0.1 for degenerate Si.

    Returns
    -------
    ndarray of float64
        J [A/m^2], with the sign of ``v_ox_V``.

    Raises
    ------
    InputError
        Unknown model or bad parameter.
    PhysicsDomainError
        ``"simmons"`` with |V| >= phi_B.

    Examples
    --------
    >>> ox = Oxide.from_material("SiO2", thickness_nm=2.0)
    >>> j = current_density_A_per_m2(1.0, ox) * 1e-4  # A/cm^2, metal cathode
    >>> 0.05 < float(j) < 0.08
    True
    """
    v = _as_float_array(v_ox_V, "v_ox_V")
    log_j = log_current_density(v, oxide, model, temperature_K, electrode_mass_ratio, band_bottom_eV)
    return np.sign(v) * np.exp(log_j)


def log_current_density(v_ox_V, oxide: Oxide, model: str = "tsu_esaki", temperature_K=300.0,
                        electrode_mass_ratio=1.0, band_bottom_eV=-5.0) -> np.ndarray:
    """ln |J| [ln(A/m^2)]; -inf where J = 0 (V_ox = 0). Same arguments as :func:`current_density_A_per_m2`."""
    if model not in CURRENT_MODELS:
        raise InputError(f"model={model!r} must be one of {', '.join(CURRENT_MODELS)}.")
    ox = _check_oxide(oxide)
    v = np.abs(_as_float_array(v_ox_V, "v_ox_V"))
    if model == "tsu_esaki":
        t_k = _as_float_array(temperature_K, "temperature_K")
        m_el = _as_float_array(electrode_mass_ratio, "electrode_mass_ratio")
        bb = _as_float_array(band_bottom_eV, "band_bottom_eV")
        if np.any(t_k <= 0):
            raise InputError(f"temperature_K={temperature_K!r} must be > 0.")
        if np.any(m_el <= 0):
            raise InputError(f"electrode_mass_ratio={electrode_mass_ratio!r} must be > 0.")
        if np.any(bb >= 0):
            raise InputError(f"band_bottom_eV={band_bottom_eV!r} must be < 0 (below the cathode Fermi level).")
        return _log_tsu_esaki(v, ox, t_k, m_el, bb)
    d_m = np.asarray(ox.thickness_nm) * 1e-9
    phi = np.asarray(ox.barrier_eV)
    positive = v > 0
    vs = np.where(positive, v, 1.0)  # J(0) = 0 is put back at the end
    log_f = np.log(vs) - np.log(d_m)  # ln F [V/m]
    f = vs / d_m
    if model == "fn":
        a, b = fn_coefficients(ox)
        with np.errstate(over="ignore"):  # B / F overflows at subnormal F: ln J = -inf, J underflows to 0
            return np.where(positive, np.log(a) + 2 * log_f - b / f, -np.inf)
    if model == "schuegraf_hu":
        a, b = fn_coefficients(ox)
        below = vs < phi
        log_x = np.minimum(np.log(vs) - np.log(phi), 0.0)  # x = min(V / phi, 1), in logs: no underflow at tiny V
        x = np.exp(log_x)
        sq = np.sqrt(1.0 - x)
        # 1 - sqrt(1 - x) = x / (1 + sqrt(1 - x)); 1 - (1 - x)^1.5 = x r(x) with r = -expm1(1.5 log1p(-x)) / x
        # (r -> 1.5 - 0.375 x as x -> 0); x = 1 is FN. The exponent b x r / F is b r d / phi below the barrier.
        log_den = 2.0 * (log_x - np.log1p(sq))
        small = x < 1e-8
        xs = np.where(small, 1.0, x)
        with np.errstate(divide="ignore"):
            r = np.where(small, 1.5 - 0.375 * x, -np.expm1(1.5 * np.log1p(-xs)) / xs)
        with np.errstate(over="ignore"):  # 1 / F at subnormal F (above the barrier only): ln J = -inf
            x_over_f = np.where(below, d_m / phi, 1.0 / f)
            out = np.log(a) + 2 * log_f - log_den - b * r * x_over_f
        return np.where(positive, out, -np.inf)
    # Simmons (1963) intermediate voltage, identical electrodes, phi from E_F, energies in J
    if np.any(v >= phi):
        raise PhysicsDomainError(
            f"model='simmons' is Simmons' intermediate-voltage form and needs |v_ox_V| < barrier_eV "
            f"(got up to {float(np.max(v)):g} V vs {float(np.min(phi)):g} eV); use model='tsu_esaki' or 'fn'."
        )
    q = ELEMENTARY_CHARGE_C
    m = np.asarray(ox.mass_ratio) * ELECTRON_MASS_KG
    big_a = 4.0 * math.pi * d_m * np.sqrt(2.0 * m) / PLANCK_J_S  # 1/sqrt(J)
    phib = (phi - v / 2.0) * q
    qv = v * q
    # f(x) = x exp(-A sqrt x); J = q/(2 pi h d^2) [f(phib) - f(phib + qV)]
    log_f1 = np.log(phib) - big_a * np.sqrt(phib)
    dlog = np.log1p(qv / phib) - big_a * qv / (np.sqrt(phib + qv) + np.sqrt(phib))
    with np.errstate(divide="ignore"):
        out = np.log(q / (2 * math.pi * PLANCK_J_S)) - 2 * np.log(d_m) + log_f1 + np.log(-np.expm1(dlog))
    return np.where(v > 0, out, -np.inf)


def _log_softplus(x: np.ndarray) -> np.ndarray:
    """ln ln(1 + e^x), accurate for very negative x."""
    with np.errstate(divide="ignore"):
        return np.where(x > -30.0, np.log(np.logaddexp(0.0, np.maximum(x, -30.0))), x)


def _log_tsu_esaki(v, ox: Oxide, t_k, m_el, bb) -> np.ndarray:
    """ln J of the Tsu-Esaki integral on the composite Gauss-Legendre grid, broadcast and chunked."""
    d, phi, m_r = np.asarray(ox.thickness_nm, float), np.asarray(ox.barrier_eV, float), np.asarray(ox.mass_ratio, float)
    arrays = np.broadcast_arrays(v, d, phi, m_r, t_k, m_el, bb)
    shape = arrays[0].shape
    flat = [np.ravel(a) for a in arrays]
    out = np.empty(flat[0].size)
    for start in range(0, out.size, _CHUNK):
        sl = slice(start, start + _CHUNK)
        out[sl] = _log_tsu_esaki_flat(*(a[sl] for a in flat))
    return out.reshape(shape)


def _energy_grid(v, phi, kt_ev, bb):
    """Nodes [eV] and log-weights of the composite Gauss-Legendre grid, shape (n, n_nodes)."""
    top = phi  # barrier top at the cathode for V >= 0; thermionic emission above it is not tunnelling
    e1 = np.clip(-v, bb, 0.0)
    e3 = np.minimum(_THERMAL_WINDOW_KT * kt_ev, top)
    edges = (bb, e1, np.zeros_like(v), e3, top)
    nodes, logw = [], []
    for (lo, hi), n_sub in zip(zip(edges[:-1], edges[1:]), _SUBPANELS):
        width = (hi - lo) / n_sub  # (n,)
        centers = lo[:, None] + width[:, None] * (np.arange(n_sub) + 0.5)[None, :]  # (n, n_sub)
        x = centers[:, :, None] + 0.5 * width[:, None, None] * _GL_X[None, None, :]
        with np.errstate(divide="ignore"):
            w = np.log(0.5 * width)[:, None, None] + np.log(_GL_W)[None, None, :] + np.zeros_like(x)
        nodes.append(x.reshape(x.shape[0], -1))
        logw.append(w.reshape(x.shape[0], -1))
    return np.concatenate(nodes, axis=1), np.concatenate(logw, axis=1)


def _log_tsu_esaki_flat(v, d, phi, m_r, t_k, m_el, bb) -> np.ndarray:
    kt_ev = BOLTZMANN_J_PER_K * t_k / ELEMENTARY_CHARGE_C
    e, logw = _energy_grid(v, phi, kt_ev, bb)
    ox = Oxide(thickness_nm=d[:, None], barrier_eV=phi[:, None], mass_ratio=m_r[:, None])
    log_t = log_transmission(e, ox, v[:, None])
    x1 = -e / kt_ev[:, None]  # (E_F - E)/kT with E_F = 0
    u = (v / kt_ev)[:, None]  # qV/kT
    with np.errstate(divide="ignore"):
        ls1 = _log_softplus(x1)
        ls2 = _log_softplus(x1 - u)
        exact = ls1 + np.log(-np.expm1(np.minimum(ls2 - ls1, 0.0)))
        # qV << kT: ln(1+e^x1) - ln(1+e^(x1-u)) = u * sigmoid(x1) to first order
        linear = np.log(u) - np.logaddexp(0.0, -x1)
    log_supply = np.where(u < _LINEAR_SUPPLY_BELOW, linear, exact)
    integrand = logw + log_t + log_supply
    peak = np.max(integrand, axis=1)
    finite = np.isfinite(peak)
    safe_peak = np.where(finite, peak, 0.0)
    with np.errstate(divide="ignore"):
        log_int = safe_peak + np.log(np.sum(np.exp(integrand - safe_peak[:, None]), axis=1))
    q = ELEMENTARY_CHARGE_C
    # J = q m_el k_B T / (2 pi^2 hbar^3) * q * integral dE[eV]
    log_pref = (np.log(q * m_el * ELECTRON_MASS_KG * BOLTZMANN_J_PER_K * t_k / (2 * math.pi**2 * HBAR_J_S**3))
                + math.log(q))
    return np.where(finite, log_pref + log_int, -np.inf)
