"""From leakage to bit flips: retention time, flip probability (three models), asymmetric and per-plane
rates, and the inverse problem "which oxide keeps p below a target" (docs/physics.md).

Vocabulary: a *charged* cell holds the written charge and leaks; its bit reads wrong once the oxide
voltage has fallen from ``v_stored_V`` to ``v_sense_V``. ``p_c`` is P(charged -> uncharged) after a
storage time; the uncharged state gains charge only by other mechanisms (``p_u = eta_up * p_c``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.special import logsumexp
from scipy.special import log_ndtr, ndtri

from ..constants import ELEMENTARY_CHARGE_C, SECONDS_PER_YEAR, VACUUM_PERMITTIVITY_F_PER_M
from ..errors import InputError, PhysicsDomainError
from ..rates import FlipRates, check_bits
from .cells import Oxide, StorageCell
from .current import log_current_density
from .transmission import _as_float_array

__all__ = [
    "FLIP_MODELS",
    "retention_time_s",
    "log_retention_time",
    "retention_thickness_nm",
    "flip_probability",
    "log_flip_probability",
    "counting_mean_time_s",
    "flip_rates",
    "symmetric_rate",
    "thickness_for",
    "plane_rates",
    "memory_flip_rates",
    "memory_cell",
]

FLIP_MODELS = ("variability", "poisson", "counting")
CELL_KINDS = ("flash", "dram")

_V_NODES = 16
_VX, _VW = np.polynomial.legendre.leggauss(_V_NODES)
#: thickness range [nm] searched for d*(t) by the forward model; outside it p is 0 (below) or 1 (above)
_FORWARD_BRACKET_NM = (0.1, 15.0)
_MAX_COUNTING_STEPS = 256


def _check_cell(cell) -> StorageCell:
    if not isinstance(cell, StorageCell):
        raise InputError(f"cell={cell!r} must be a StorageCell (e.g. StorageCell.floating_gate(oxide)).")
    return cell


def _check_time(t_s, name: str = "t_s") -> np.ndarray:
    t = _as_float_array(t_s, name)
    if np.any(t < 0):
        raise InputError(f"{name}={t_s!r} must be >= 0 seconds.")
    return t


# -- deterministic discharge ------------------------------------------------------------------------------
def log_retention_time(cell: StorageCell) -> np.ndarray:
    """ln t_ret [ln s] of :func:`retention_time_s`; broadcasts over every array field of the cell."""
    cell = _check_cell(cell)
    ox = cell.oxide
    cap = np.nan if cell.capacitance_F is None else cell.capacitance_F
    (d, phi, m_r, k_rel, area, cap, alpha, v0, vs, i_other, t_k, m_el, bb) = (
        np.asarray(x, dtype=np.float64) for x in np.broadcast_arrays(
            ox.thickness_nm, ox.barrier_eV, ox.mass_ratio, ox.k_rel, cell.tunnel_area_m2, cap,
            cell.coupling_ratio, cell.v_stored_V, cell.v_sense_V, cell.i_other_A, cell.temperature_K,
            cell.electrode_mass_ratio, cell.band_bottom_eV))
    if cell.capacitance_F is None:
        c_per_a = VACUUM_PERMITTIVITY_F_PER_M * k_rel / ((1.0 - alpha) * d * 1e-9)
    else:
        c_per_a = cap / area
    ex = (..., None)
    half = 0.5 * (v0 - vs)
    v_nodes = vs[ex] + half[ex] * (_VX + 1.0)
    node_ox = Oxide(thickness_nm=d[ex], barrier_eV=phi[ex], mass_ratio=m_r[ex], k_rel=k_rel[ex])
    log_j = log_current_density(v_nodes, node_ox, "tsu_esaki", t_k[ex], m_el[ex], bb[ex])
    with np.errstate(divide="ignore"):
        log_flux = np.logaddexp(log_j, np.log(i_other / area)[ex])  # (A J + I_other) / A [A/m^2]
        terms = np.log(half)[ex] + np.log(_VW) - log_flux
    return np.log(c_per_a) + logsumexp(terms, axis=-1)


def retention_time_s(cell: StorageCell) -> np.ndarray:
    """Deterministic retention time of a charged cell [s].

    ``t_ret = C_T / A_ox * integral_{v_sense}^{v_stored} dV / (J(V) + i_other / A_ox)``, with J the
    Tsu-Esaki current of the cell's supply, integrated on a 16-node Gauss-Legendre grid in V (log space).
    With C_T from the oxide, ``C_T / A_ox = eps0 k / ((1 - alpha_G) d)`` and the result is area-free.

    Parameters
    ----------
    cell : StorageCell
        The cell; every array field broadcasts.

    Returns
    -------
    ndarray of float64
        t_ret [s] (inf if it overflows float64).

    Examples
    --------
    >>> cell = StorageCell.floating_gate(Oxide.from_material("SiO2", 4.0))
    >>> f"{float(retention_time_s(cell)):.2e}"
    '2.56e+06'
    """
    with np.errstate(over="ignore"):
        return np.exp(log_retention_time(cell))


def _log_t_ret_at(cell: StorageCell, d_nm: np.ndarray) -> np.ndarray:
    return log_retention_time(cell.with_thickness(d_nm))


def _solve_thickness(cell: StorageCell, ln_target: np.ndarray, lo: float, hi: float):
    """Vectorised Illinois root of ln t_ret(d) = ln_target on [lo, hi] nm.

    Returns (d, status): status -1 where t_ret(lo) >= target (root below lo), +1 where t_ret(hi) < target
    (root above hi), 0 where d is the root (|dd| < 1e-11 nm).
    """
    others = [cell.oxide.barrier_eV, cell.oxide.mass_ratio, cell.oxide.k_rel, cell.tunnel_area_m2,
              cell.coupling_ratio, cell.v_stored_V, cell.v_sense_V, cell.i_other_A, cell.temperature_K,
              cell.electrode_mass_ratio, cell.band_bottom_eV]
    if cell.capacitance_F is not None:
        others.append(cell.capacitance_F)
    shape = np.broadcast_shapes(np.shape(ln_target), *(np.shape(x) for x in others))
    target = np.broadcast_to(ln_target, shape).astype(np.float64).ravel()
    flat_cell = _flatten_cell(cell, shape)
    a = np.full(target.size, float(lo))
    b = np.full(target.size, float(hi))
    fa = _log_t_ret_at(flat_cell, a) - target
    fb = _log_t_ret_at(flat_cell, b) - target
    status = np.where(fa >= 0, -1, np.where(fb < 0, 1, 0))
    d = np.full(target.size, np.nan)
    active = np.flatnonzero(status == 0)
    side = np.zeros(target.size, dtype=np.int8)
    for _ in range(100):
        if active.size == 0:
            break
        aa, bb_, fa_a, fb_a = a[active], b[active], fa[active], fb[active]
        c = bb_ - fb_a * (bb_ - aa) / (fb_a - fa_a)
        bad = ~((c > aa) & (c < bb_))
        c = np.where(bad, 0.5 * (aa + bb_), c)
        fc = _log_t_ret_at(_take_cell(flat_cell, active), c) - target[active]
        left = fc < 0  # root in (c, b]: c replaces a
        a[active] = np.where(left, c, aa)
        fa[active] = np.where(left, fc, fa_a)
        b[active] = np.where(left, bb_, c)
        fb[active] = np.where(left, fb_a, fc)
        # Illinois: halve the stale end's value when the same end is kept twice
        s_new = np.where(left, 1, -1).astype(np.int8)
        stale = s_new == side[active]
        fb[active] = np.where(stale & left, 0.5 * fb[active], fb[active])
        fa[active] = np.where(stale & ~left, 0.5 * fa[active], fa[active])
        side[active] = s_new
        done = (np.abs(fc) < 1e-13) | (b[active] - a[active] < 1e-11)
        d[active[done]] = c[done]
        active = active[~done]
    return d.reshape(shape), status.reshape(shape)


def _flatten_cell(cell: StorageCell, shape) -> StorageCell:
    """A cell whose non-thickness array fields are broadcast to ``shape`` and raveled (1-D)."""
    import dataclasses

    def flat(x):
        return np.broadcast_to(np.asarray(x, dtype=np.float64), shape).ravel() if np.ndim(x) else x

    ox = cell.oxide
    new_ox = dataclasses.replace(ox, barrier_eV=flat(ox.barrier_eV), mass_ratio=flat(ox.mass_ratio),
                                 k_rel=flat(ox.k_rel), thickness_nm=1.0)
    kw = {n: flat(getattr(cell, n)) for n in ("tunnel_area_m2", "coupling_ratio", "v_stored_V", "v_sense_V",
                                               "i_other_A", "temperature_K", "electrode_mass_ratio",
                                               "band_bottom_eV")}
    if cell.capacitance_F is not None:
        kw["capacitance_F"] = flat(cell.capacitance_F)
    return dataclasses.replace(cell, oxide=new_ox, **kw)


def _take_cell(cell: StorageCell, idx: np.ndarray) -> StorageCell:
    import dataclasses

    def take(x):
        return np.asarray(x)[idx] if np.ndim(x) else x

    ox = cell.oxide
    new_ox = dataclasses.replace(ox, barrier_eV=take(ox.barrier_eV), mass_ratio=take(ox.mass_ratio),
                                 k_rel=take(ox.k_rel))
    kw = {n: take(getattr(cell, n)) for n in ("tunnel_area_m2", "coupling_ratio", "v_stored_V", "v_sense_V",
                                               "i_other_A", "temperature_K", "electrode_mass_ratio",
                                               "band_bottom_eV")}
    if cell.capacitance_F is not None:
        kw["capacitance_F"] = take(cell.capacitance_F)
    return dataclasses.replace(cell, oxide=new_ox, **kw)


def retention_thickness_nm(t_s, cell: StorageCell, bracket_nm: tuple[float, float] = (0.5, 20.0)) -> np.ndarray:
    """d*(t): the oxide thickness [nm] whose deterministic retention time equals ``t_s``.

    Everything but the cell's thickness is kept (C_T follows 1/d when it comes from the oxide).

    Raises
    ------
    PhysicsDomainError
        If d* lies outside ``bracket_nm``.

    Examples
    --------
    >>> cell = StorageCell.floating_gate(Oxide.from_material("SiO2", 5.0))
    >>> round(float(retention_thickness_nm(10 * 3.15576e7, cell)), 2)
    4.43
    """
    cell = _check_cell(cell)
    lo, hi = _check_bracket(bracket_nm)
    t = _check_time(t_s)
    if np.any(t <= 0):
        raise InputError(f"t_s={t_s!r} must be > 0 seconds.")
    d, status = _solve_thickness(cell, np.log(t), lo, hi)
    if np.any(status != 0):
        where = "below" if np.any(status < 0) else "above"
        raise PhysicsDomainError(
            f"the thickness with retention time t_s={_first(t, status != 0):g} s lies {where} the bracket "
            f"[{lo:g}, {hi:g}] nm; widen bracket_nm."
        )
    return d


def _check_bracket(bracket_nm) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in bracket_nm)
    except (TypeError, ValueError) as exc:
        raise InputError(f"bracket_nm={bracket_nm!r} must be a pair (low, high) of thicknesses in nm.") from exc
    if not (0 < lo < hi and math.isfinite(hi)):
        raise InputError(f"bracket_nm={bracket_nm!r} must satisfy 0 < low < high (nm).")
    return lo, hi


def _first(arr, mask) -> float:
    a = np.broadcast_to(arr, np.shape(mask))
    return float(a[mask].ravel()[0]) if np.ndim(mask) else float(a)


# -- flip probability ---------------------------------------------------------------------------------------
def _check_model(model: str) -> str:
    if model not in FLIP_MODELS:
        raise InputError(f"model={model!r} must be one of {', '.join(FLIP_MODELS)}.")
    return model


def _check_sigma(sigma_thickness_rel, sigma_barrier_eV) -> tuple[float, float]:
    s_rel = float(_as_float_array(sigma_thickness_rel, "sigma_thickness_rel"))
    s_phi = float(_as_float_array(sigma_barrier_eV, "sigma_barrier_eV"))
    if not 0.0 <= s_rel < 1.0:
        raise InputError(f"sigma_thickness_rel={sigma_thickness_rel!r} must be in [0, 1) (0.02-0.05 is typical).")
    if s_phi < 0.0:
        raise InputError(f"sigma_barrier_eV={sigma_barrier_eV!r} must be >= 0 (0.05-0.1 eV is typical).")
    return s_rel, s_phi


def log_flip_probability(t_s, cell: StorageCell, model: str = "variability", sigma_thickness_rel=0.03,
                         sigma_barrier_eV=0.0) -> np.ndarray:
    """ln P(charged cell reads wrong within ``t_s``) [ln of a probability]; see :func:`flip_probability`."""
    cell = _check_cell(cell)
    model = _check_model(model)
    t = _check_time(t_s)
    if model == "poisson":
        ln_tau = log_retention_time(cell)
        with np.errstate(divide="ignore", over="ignore"):
            x = np.exp(np.log(t) - ln_tau)
            return np.log(-np.expm1(-x))
    if model == "counting":
        return _log_p_counting(t, cell)
    s_rel, s_phi = _check_sigma(sigma_thickness_rel, sigma_barrier_eV)
    with np.errstate(divide="ignore"):
        ln_t = np.log(t)
    lo, hi = _FORWARD_BRACKET_NM
    ln_t_safe = np.where(t > 0, ln_t, 0.0)
    d_star, status = _solve_thickness(cell, ln_t_safe, lo, hi)
    d_star = np.where(status < 0, -np.inf, np.where(status > 0, np.inf, d_star))
    d_star = np.where(t > 0, d_star, -np.inf)
    d_bar = np.asarray(cell.oxide.thickness_nm)
    sigma = s_rel * d_bar
    if s_phi > 0.0:
        sigma = np.sqrt(sigma**2 + (s_phi * _barrier_to_thickness(cell, d_star)) ** 2)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        z = np.where(sigma > 0, (d_star - d_bar) / np.where(sigma > 0, sigma, 1.0),
                     np.where(d_star >= d_bar, np.inf, -np.inf))
    return log_ndtr(z)


def _barrier_to_thickness(cell: StorageCell, d_star: np.ndarray) -> np.ndarray:
    """|d d* / d phi_B| [nm/eV] at fixed t: (d ln t_ret/d phi) / (d ln t_ret/d d), central differences."""
    d = np.where(np.isfinite(d_star), d_star, np.asarray(cell.oxide.thickness_nm))
    hd, hp = 1e-3, 1e-3
    import dataclasses

    def lt(dd, dphi):
        ox = dataclasses.replace(cell.oxide, thickness_nm=dd, barrier_eV=np.asarray(cell.oxide.barrier_eV) + dphi)
        return log_retention_time(cell.with_oxide(ox))

    s_d = (lt(d + hd, 0.0) - lt(d - hd, 0.0)) / (2 * hd)
    s_p = (lt(d, hp) - lt(d, -hp)) / (2 * hp)
    return np.abs(s_p / s_d)


def flip_probability(t_s, cell: StorageCell, model: str = "variability", sigma_thickness_rel=0.03,
                     sigma_barrier_eV=0.0) -> np.ndarray:
    """P(a charged cell has leaked to the wrong value within ``t_s``) [per bit].

    Parameters
    ----------
    t_s : float or ndarray
        Storage time without refresh [s], >= 0.
    cell : StorageCell
        The cell; its oxide thickness is the *mean* thickness d_bar under ``"variability"``.
    model : {"variability", "poisson", "counting"}
        ``"variability"`` (Model A, default): per-cell thickness d ~ N(d_bar, sigma_thickness_rel d_bar),
        exact under that model: ``P = Phi((d*(t) - d_bar) / sigma_d)`` with t_ret(d*) = t; a barrier spread
        ``sigma_barrier_eV`` is added in quadrature as an equivalent thickness spread (linearised).
        ``"poisson"`` (Model B): memoryless escape with the same mean, ``P = -expm1(-t / t_ret)``.
        ``"counting"`` (Model C): electrons escape one at a time (Poisson, rate A J(n q / C_T) / q); the
        bit flips when floor(C_T v_sense / q) remain; exact hypoexponential CDF (<= 256 escapes).
    sigma_thickness_rel : float
        Relative thickness spread sigma_d / d_bar [dimensionless] (Model A).
    sigma_barrier_eV : float
        Barrier-height spread [eV] (Model A).

    Returns
    -------
    ndarray of float64
        Probability [0, 1], broadcast over ``t_s`` and the cell's array fields.

    Notes
    -----
    docs/physics.md Under Model A the forward search for d*(t) covers 0.1-15 nm: a time
    shorter than the retention of a 0.1 nm oxide gives 0, one longer than that of 15 nm gives 1.

    Examples
    --------
    >>> cell = StorageCell.floating_gate(Oxide.from_material("SiO2", 5.163))
    >>> f"{float(flip_probability(10 * 3.15576e7, cell)):.2e}"
    '9.99e-07'
    """
    return np.exp(log_flip_probability(t_s, cell, model, sigma_thickness_rel, sigma_barrier_eV))


# -- Model C: electron counting ------------------------------------------------------------------------------
def _escape_rates(cell: StorageCell, limit: int | None = _MAX_COUNTING_STEPS) -> np.ndarray:
    """lambda_n [1/s] for n = n_th + 1 .. n0 (scalar cell), ascending n; at most ``limit`` of them."""
    c_t = float(cell.capacitance_total_F)
    q = ELEMENTARY_CHARGE_C
    n0 = math.floor(c_t * float(cell.v_stored_V) / q)
    n_th = math.floor(c_t * float(cell.v_sense_V) / q)
    k = n0 - n_th
    if k < 1:
        raise PhysicsDomainError(
            f"the cell stores {n0} electrons and flips at {n_th}: no electron has to escape. Enlarge the cell "
            "or widen v_stored_V - v_sense_V."
        )
    if limit is not None and k > limit:
        raise PhysicsDomainError(
            f"model='counting' enumerates escapes: this cell must lose {k} > {limit} electrons to "
            "flip, where shot noise is negligible; use model='variability' (or 'poisson')."
        )
    n = np.arange(n_th + 1, n0 + 1, dtype=np.float64)
    ox = cell.oxide
    log_j = log_current_density(n * q / c_t, ox, "tsu_esaki", cell.temperature_K, cell.electrode_mass_ratio,
                                cell.band_bottom_eV)
    return (float(cell.tunnel_area_m2) * np.exp(log_j) + float(cell.i_other_A)) / q


def _scalar_cells(cell: StorageCell, shape):
    """Yield (index, scalar cell) over the broadcast shape of the cell's array fields."""
    import dataclasses

    fields = {"thickness_nm": cell.oxide.thickness_nm, "barrier_eV": cell.oxide.barrier_eV,
              "mass_ratio": cell.oxide.mass_ratio, "k_rel": cell.oxide.k_rel}
    cell_fields = {n: getattr(cell, n) for n in ("tunnel_area_m2", "coupling_ratio", "v_stored_V", "v_sense_V",
                                                 "i_other_A", "temperature_K", "electrode_mass_ratio",
                                                 "band_bottom_eV")}
    if cell.capacitance_F is not None:
        cell_fields["capacitance_F"] = cell.capacitance_F
    for idx in np.ndindex(*shape):
        def pick(x):
            return float(np.broadcast_to(x, shape)[idx]) if np.ndim(x) else x
        ox = dataclasses.replace(cell.oxide, **{n: pick(v) for n, v in fields.items()})
        yield idx, dataclasses.replace(cell, oxide=ox, **{n: pick(v) for n, v in cell_fields.items()})


def _cell_shape(cell: StorageCell):
    vals = [cell.oxide.thickness_nm, cell.oxide.barrier_eV, cell.oxide.mass_ratio, cell.oxide.k_rel,
            cell.tunnel_area_m2, cell.coupling_ratio, cell.v_stored_V, cell.v_sense_V, cell.i_other_A,
            cell.temperature_K, cell.electrode_mass_ratio, cell.band_bottom_eV]
    if cell.capacitance_F is not None:
        vals.append(cell.capacitance_F)
    return np.broadcast_shapes(*(np.shape(v) for v in vals))


def _log_hypoexp_cdf(t: float, rates: np.ndarray) -> float:
    """ln P(sum_i Exp(rates[i]) <= t), exact and cancellation-free.

    ``[expm(G t)]_{0,k}`` of the pure-birth generator G, computed as ``(e^{-L h} expm((G + L I) h))^(2^s)``
    with L = max rate and L h <= 1/2: G + L I is entrywise >= 0, so its Taylor series and the squarings
    add only non-negative terms and keep relative accuracy down to the smallest probabilities.
    """
    if t <= 0:
        return -math.inf
    k = rates.size
    lam = float(np.max(rates))
    s = max(0, math.ceil(math.log2(max(lam * t, 1e-300) / 0.5)))
    h = t / 2.0**s
    n_mat = np.zeros((k + 1, k + 1))
    idx = np.arange(k)
    n_mat[idx, idx] = (lam - rates) * h
    n_mat[idx, idx + 1] = rates * h
    n_mat[k, k] = lam * h
    e = np.eye(k + 1)
    term = np.eye(k + 1)
    for j in range(1, 60):
        term = term @ n_mat / j
        e = e + term
        if np.max(term) < 1e-18 * np.max(e):
            break
    e *= math.exp(-lam * h)
    # keep a running log-scale so that tiny entries survive many squarings
    log_scale = 0.0
    for _ in range(s):
        e = e @ e
        log_scale *= 2.0
        mx = float(np.max(e))
        if mx > 0:
            e /= mx
            log_scale += math.log(mx)
    val = e[0, k]
    return (math.log(val) + log_scale) if val > 0 else -math.inf


def _log_p_counting(t: np.ndarray, cell: StorageCell) -> np.ndarray:
    shape_c = _cell_shape(cell)
    shape = np.broadcast_shapes(t.shape, shape_c)
    out = np.empty(shape)
    tt = np.broadcast_to(t, shape)
    for idx_c, c in _scalar_cells(cell, shape_c):
        rates = _escape_rates(c)
        sub = (Ellipsis,) if not shape_c else tuple(slice(None) for _ in range(len(shape) - len(shape_c))) + idx_c
        t_view = tt[sub]
        res = np.array([_log_hypoexp_cdf(float(x), rates) for x in np.ravel(t_view)]).reshape(np.shape(t_view))
        out[sub] = res
    return np.minimum(out, 0.0)


def counting_mean_time_s(cell: StorageCell) -> np.ndarray:
    """E[S] = sum_n 1/lambda_n [s]: mean time to flip under Model C (tends to t_ret as the cell grows)."""
    cell = _check_cell(cell)
    shape = _cell_shape(cell)
    out = np.empty(shape)
    for idx, c in _scalar_cells(cell, shape):
        out[idx] = float(np.sum(1.0 / _escape_rates(c, limit=None)))
    return out


# -- rates ------------------------------------------------------------------------------------------------------
def flip_rates(t_s, cell: StorageCell, eta_up=0.0, charged_bit: int = 1, **kw) -> tuple[np.ndarray, np.ndarray]:
    """Asymmetric per-bit flip probabilities (p_1to0, p_0to1) after ``t_s`` seconds.

    Parameters
    ----------
    t_s : float or ndarray
        Storage time [s].
    cell : StorageCell
        The cell.
    eta_up : float
        p_u = eta_up * p_c: the uncharged state gains charge only through other mechanisms (read or
        program disturb, trap charging) [dimensionless, in [0, 1]]; 0 for pure tunnelling.
    charged_bit : {0, 1}
        Which logical bit is stored as charge: 1 makes leakage a 1 -> 0 flip (p_1to0 = p_c);
        0 makes it 0 -> 1 (flash: programmed = 0).
    **kw
        ``model``, ``sigma_thickness_rel``, ``sigma_barrier_eV`` of :func:`flip_probability`.

    Returns
    -------
    p_1to0, p_0to1 : ndarray of float64
        P(stored 1 reads 0) and P(stored 0 reads 1) [per bit].
    """
    eta = float(_as_float_array(eta_up, "eta_up"))
    if not 0.0 <= eta <= 1.0:
        raise InputError(f"eta_up={eta_up!r} must be in [0, 1]: p_0to1 = eta_up * p_1to0 for the uncharged state.")
    if isinstance(charged_bit, bool) or charged_bit not in (0, 1):
        raise InputError(f"charged_bit={charged_bit!r} must be 0 or 1 (the logical value stored as charge).")
    p_c = flip_probability(t_s, cell, **kw)
    p_u = eta * p_c
    return (p_c, p_u) if charged_bit == 1 else (p_u, p_c)


def symmetric_rate(p_1to0, p_0to1, frac_ones=0.5) -> np.ndarray:
    """Binary-symmetric rate seen by data with a fraction ``frac_ones`` of ones [per bit].

    ``p = frac_ones * p_1to0 + (1 - frac_ones) * p_0to1``; 0.5 is the exact rate under random cell
    polarity or data scrambling (docs/physics.md).
    """
    p10 = _as_float_array(p_1to0, "p_1to0")
    p01 = _as_float_array(p_0to1, "p_0to1")
    f = _as_float_array(frac_ones, "frac_ones")
    for name, arr in (("p_1to0", p10), ("p_0to1", p01), ("frac_ones", f)):
        if np.any((arr < 0) | (arr > 1)):
            raise InputError(f"{name} must lie in [0, 1].")
    return f * p10 + (1.0 - f) * p01


def plane_rates(t_s, cells: Sequence[StorageCell], **kw) -> FlipRates:
    """Per-plane rates: ``cells[k]`` stores bit plane k (0 = LSB) [docs/physics.md].

    Parameters
    ----------
    t_s : float
        Storage time [s].
    cells : sequence of StorageCell
        One cell design per plane, 2..16 of them.
    **kw
        ``eta_up``, ``charged_bit``, ``model``, ``sigma_thickness_rel``, ``sigma_barrier_eV``.

    Returns
    -------
    FlipRates
        ``p_down[k]`` = P(1 -> 0), ``p_up[k]`` = P(0 -> 1) of plane k.

    Raises
    ------
    PhysicsDomainError
        When a plane reaches p_down + p_up >= 1 (its bit carries no information).
    """
    if isinstance(cells, StorageCell) or not isinstance(cells, Sequence):
        raise InputError("cells must be a sequence of StorageCell, one per bit plane (LSB first).")
    check_bits(len(cells), "len(cells)")
    if np.ndim(t_s) != 0:
        raise InputError(f"t_s={t_s!r} must be one storage time [s] for all planes.")
    pd, pu = np.empty(len(cells)), np.empty(len(cells))
    for k, c in enumerate(cells):
        a, b = flip_rates(t_s, _check_cell(c), **kw)
        if np.ndim(a) != 0:
            raise InputError(f"cells[{k}] has array fields: give one scalar cell per plane.")
        pd[k], pu[k] = float(a), float(b)
    _refuse_no_information(pd, pu, "plane")
    return FlipRates(pd, pu)


def _refuse_no_information(pd, pu, what: str, fix: str = "") -> None:
    a = 1.0 - pd - pu
    if np.any((a <= 0) | (pd >= 1) | (pu >= 1)):
        k = int(np.argmax((a <= 0) | (pd >= 1) | (pu >= 1)))
        raise PhysicsDomainError(
            f"{what} {k}: p_1to0={pd[k]:.6g}, p_0to1={pu[k]:.6g} give 1 - p_1to0 - p_0to1 <= 0: the stored bits "
            f"carry no information. {fix or 'Use a thicker oxide or a shorter storage time.'}"
        )


# -- inverse problem ---------------------------------------------------------------------------------------------
def thickness_for(p_target, t_s, cell: StorageCell, model: str = "variability",
                  bracket_nm: tuple[float, float] = (0.5, 20.0), sigma_thickness_rel=0.03,
                  sigma_barrier_eV=0.0):
    """The mean oxide thickness d_bar [nm] at which P(flip within ``t_s``) equals ``p_target``.

    Parameters
    ----------
    p_target : float or ndarray
        Target flip probability per bit, in (0, 1).
    t_s : float or ndarray
        Storage time [s], > 0.
    cell : StorageCell
        The cell; its thickness is replaced (C_T follows 1/d when it comes from the oxide).
    model : {"variability", "poisson", "counting"}
        As in :func:`flip_probability`. Model A with relative spread s has the closed form
        ``d_bar = d*(t) / (1 + s Phi^-1(p))``; Model B solves t_ret(d) = -t / ln(1 - p).
    bracket_nm : (float, float)
        Thickness range searched [nm].
    sigma_thickness_rel, sigma_barrier_eV : float
        Spreads of Model A.

    Returns
    -------
    float or ndarray
        d_bar [nm].

    Raises
    ------
    InputError
        ``p_target`` outside (0, 1), ``t_s`` <= 0, bad bracket.
    PhysicsDomainError
        When no thickness in the bracket reaches the target.

    Examples
    --------
    >>> cell = StorageCell.floating_gate(Oxide.from_material("SiO2", 5.0))
    >>> round(float(thickness_for(1e-6, 10 * 3.15576e7, cell)), 2)
    5.16
    """
    cell = _check_cell(cell)
    model = _check_model(model)
    lo, hi = _check_bracket(bracket_nm)
    p = _as_float_array(p_target, "p_target")
    if np.any((p <= 0) | (p >= 1)):
        raise InputError(f"p_target={p_target!r} must be a probability strictly between 0 and 1 (e.g. 1e-6).")
    t = _check_time(t_s)
    if np.any(t <= 0):
        raise InputError(f"t_s={t_s!r} must be > 0 seconds.")
    s_rel, s_phi = _check_sigma(sigma_thickness_rel, sigma_barrier_eV)
    if model == "poisson":
        ln_tau = np.log(t) - np.log(-np.log1p(-p))
        return _solve_or_raise(cell, ln_tau, lo, hi, p, t)
    if model == "variability" and s_phi == 0.0:
        z = ndtri(p)
        den = 1.0 + s_rel * z
        if np.any(den <= 0):
            raise PhysicsDomainError(
                f"p_target={_first(p, den <= 0):g} with sigma_thickness_rel={s_rel:g}: 1 + sigma Phi^-1(p) = "
                f"{_first(den, den <= 0):.3g} <= 0, so at least that fraction of cells is thinner than any "
                "working thickness whatever the mean; lower sigma_thickness_rel or raise p_target."
            )
        d_star = _solve_or_raise(cell, np.log(t) + 0.0 * p, lo, hi, p, t)
        d_bar = d_star / den
        out = (d_bar < lo) | (d_bar > hi)
        if np.any(out):
            raise PhysicsDomainError(
                f"p_target={_first(p + 0 * d_bar, out):g} after t_s={_first(t + 0 * d_bar, out):g} s needs a mean "
                f"thickness of {_first(d_bar, out):.3g} nm, outside the bracket [{lo:g}, {hi:g}] nm; widen "
                "bracket_nm."
            )
        return d_bar
    # general case: root of ln p(d_bar) = ln p_target, one scalar at a time
    pp, tt = np.broadcast_arrays(p, t)
    if _cell_shape(cell):
        raise InputError("thickness_for with this model needs a cell with scalar fields.")
    from scipy.optimize import brentq  # here, not at import: scipy.optimize costs 0.1 s of every start-up

    out = np.empty(pp.shape)
    for idx in np.ndindex(*pp.shape):
        ln_p, tv = math.log(pp[idx]), float(tt[idx])

        def g(dd, ln_p=ln_p, tv=tv):
            return float(log_flip_probability(tv, cell.with_thickness(dd), model, s_rel, s_phi)) - ln_p

        g_lo, g_hi = g(lo), g(hi)
        if not (g_lo >= 0 >= g_hi):
            raise PhysicsDomainError(
                f"p_target={pp[idx]:g} after t_s={tv:g} s is unreachable in the bracket [{lo:g}, {hi:g}] nm "
                f"(p = {math.exp(g_lo + ln_p):.3g} at {lo:g} nm, {math.exp(g_hi + ln_p):.3g} at {hi:g} nm); "
                "widen bracket_nm or change the target."
            )
        out[idx] = brentq(g, lo, hi, xtol=1e-10, rtol=1e-14)
    return out


def _solve_or_raise(cell, ln_t, lo, hi, p, t):
    d, status = _solve_thickness(cell.with_thickness(1.0), ln_t, lo, hi)
    if np.any(status != 0):
        bad = status != 0
        below = bool(np.any(status < 0))
        reason = (f"even {lo:g} nm retains longer" if below else f"even {hi:g} nm retains shorter")
        raise PhysicsDomainError(
            f"p_target={_first(np.broadcast_to(p, np.shape(d)), bad):g} after "
            f"t_s={_first(np.broadcast_to(t, np.shape(d)), bad):g} s is unreachable in the "
            f"bracket [{lo:g}, {hi:g}] nm: {reason} than needed; widen bracket_nm or change the target."
        )
    return d


# -- the evaluation's entry point ------------------------------------------------------------------------------
def memory_cell(material: str = "SiO2", thickness_nm: float = 4.5, cell: str = "flash", **oxide_overrides) -> StorageCell:
    """The preset cell behind the CLI: ``"flash"`` (20x20 nm^2 floating gate, alpha_G 0.6, 2 V -> 1 V,
    Si-like supply) or ``"dram"`` (20 fF, V_DD 1.1 V, tunnelling part only) on ``material`` of
    ``thickness_nm`` [nm]."""
    if cell not in CELL_KINDS:
        raise InputError(f"cell={cell!r} must be one of {', '.join(CELL_KINDS)}.")
    ox = Oxide.from_material(material, thickness_nm=thickness_nm, **oxide_overrides)
    return StorageCell.floating_gate(ox) if cell == "flash" else StorageCell.dram(ox)


def memory_flip_rates(material: str = "SiO2", thickness_nm: float = 4.5, years: float = 10.0,
                      cell: str = "flash", bits: int = 8, *, eta_up: float = 0.0, charged_bit: int = 1,
                      symmetric: bool = False, sigma_thickness_rel: float = 0.03) -> FlipRates:
    """Flip rates of ``bits`` planes stored ``years`` in a preset cell: the call behind
    ``--material/--thickness-nm/--years/--cell``.

    Parameters
    ----------
    material : str
        Oxide of the table ("SiO2", "Si3N4", "HfO2").
    thickness_nm : float
        Mean oxide thickness [nm].
    years : float
        Storage time without refresh [Julian years], > 0.
    cell : {"flash", "dram"}
        Preset cell (:func:`memory_cell`).
    bits : int
        Number of bit planes B (2..16); every plane gets the same rates.
    eta_up, charged_bit
        As in :func:`flip_rates`.
    symmetric : bool
        Return the binary-symmetric average (p_1to0 + p_0to1) / 2 on both directions (random polarity).
    sigma_thickness_rel : float
        Relative thickness spread of Model A.

    Returns
    -------
    FlipRates
        ``p_down`` = P(1 -> 0), ``p_up`` = P(0 -> 1) per plane.

    Raises
    ------
    PhysicsDomainError
        When the rates reach p_down + p_up >= 1 (too thin an oxide for that time); the message gives the
        thickness that keeps p at 1e-6.

    Examples
    --------
    >>> r = memory_flip_rates("SiO2", thickness_nm=5.163, years=10)
    >>> f"{r.p_down[0]:.1e} {r.p_up[0]:.1e} {r.bits}"
    '1.0e-06 0.0e+00 8'
    """
    bits = check_bits(bits)
    yrs = float(_as_float_array(years, "years"))
    if yrs <= 0:
        raise InputError(f"years={years!r} must be > 0.")
    if not isinstance(symmetric, bool | np.bool_):
        raise InputError(f"symmetric={symmetric!r} must be True or False.")
    c = memory_cell(material, thickness_nm, cell)
    if np.ndim(c.oxide.thickness_nm) != 0:
        raise InputError(f"thickness_nm={thickness_nm!r} must be one thickness [nm].")
    t = yrs * SECONDS_PER_YEAR
    p10, p01 = flip_rates(t, c, eta_up=eta_up, charged_bit=charged_bit, sigma_thickness_rel=sigma_thickness_rel)
    p10, p01 = float(p10), float(p01)
    if symmetric:
        p10 = p01 = float(symmetric_rate(p10, p01))
    pd, pu = np.full(bits, p10), np.full(bits, p01)
    try:
        _refuse_no_information(pd, pu, "plane")
    except PhysicsDomainError:
        try:
            d_ok = float(thickness_for(1e-6, t, c, sigma_thickness_rel=sigma_thickness_rel))
            fix = f"Use thickness_nm >= {d_ok:.2f} (p = 1e-6 after {yrs:g} years) or a shorter storage time."
        except PhysicsDomainError:
            fix = "Use a thicker oxide or a shorter storage time."
        raise PhysicsDomainError(
            f"{material} thickness_nm={float(thickness_nm):g} after years={yrs:g} ({cell}): p_1to0={p10:.6g}, "
            f"p_0to1={p01:.6g} give 1 - p_1to0 - p_0to1 <= 0, so the stored bits carry no information. {fix}"
        ) from None
    return FlipRates(pd, pu)
