"""Closed forms of the bit-plane fault model: T1-T4, the exact law, V_l(m), LUT bias/MSE (theory sections 3-4).

Everything here is in *code units* (one quantization step) unless a function says otherwise; multiply
by ``s_l^2`` for weight units (T4, :func:`weight_variance`). Codes are indexed by their stored bit
pattern ``0 .. 2^B - 1``; :func:`code_values` gives the signed integer each pattern reads as.

The exact law of a stored code under independent per-plane flips is a Kronecker product of B 2x2
matrices (T3); :func:`apply_channel` applies it (or its adjoint, a conditional expectation) in
``O(B 2^B)`` operations, which is what makes the MMSE lookup tables and their exact bias/MSE cheap at
every B up to 16.

Examples
--------
>>> from wkbnoise import FlipRates
>>> r = FlipRates.symmetric(0.1, bits=8)
>>> affine_drift(r)             # E[q~ | q] = 0.8 q - 0.1
(0.8, -0.1)
>>> round(float(top_plane_share(8, 1)), 4), round(float(top_plane_share(8, 2)), 4)
(0.75, 0.9375)
"""

from __future__ import annotations

import math

import numpy as np

from .errors import InputError
from .rates import FlipRates, check_bits

__all__ = [
    "ENCODINGS", "check_encoding", "plane_coefficients", "code_bits", "code_values", "plane_matrices",
    "apply_channel", "transition_row", "transition_matrix", "mask_probabilities", "mean_drift", "affine_drift",
    "conditional_variance", "plane_variances", "symmetric_variance", "top_plane_share", "weight_variance",
    "residual_variance", "lut_error_moments", "lut_bias_mse", "gaussian_variance", "gaussian_tail_probability",
    "error_law", "MAX_MATRIX_BITS", "conditional_moments", "variance_share",
]

ENCODINGS = ("twos", "signmag")
MAX_MATRIX_BITS = 12


def check_encoding(encoding: object) -> str:
    """Return ``encoding`` after checking it is ``"twos"`` or ``"signmag"``."""
    if encoding not in ENCODINGS:
        raise InputError(f"encoding={encoding!r} must be one of {', '.join(ENCODINGS)} "
                         "(two's complement or sign-magnitude).")
    return str(encoding)


def _check_rates(rates: object) -> FlipRates:
    if not isinstance(rates, FlipRates):
        raise InputError(f"rates must be a FlipRates (e.g. FlipRates.symmetric(0.01, bits=8)), not {type(rates).__name__}.")
    return rates


def plane_coefficients(bits: int) -> np.ndarray:
    """Two's-complement plane weights ``c_k`` (float64[B]): ``2^k`` for k < B-1, ``-2^(B-1)`` for the MSB."""
    bits = check_bits(bits)
    c = 2.0 ** np.arange(bits)
    c[-1] = -c[-1]
    return c


def code_bits(bits: int) -> np.ndarray:
    """Bit ``k`` of every code: uint8[2^B, B] (row = stored pattern, column = plane, 0 = LSB)."""
    bits = check_bits(bits)
    codes = np.arange(2**bits, dtype=np.int64)
    return ((codes[:, None] >> np.arange(bits)) & 1).astype(np.uint8)


def code_values(bits: int, encoding: str = "twos") -> np.ndarray:
    """Signed integer value that each stored pattern reads as, float64[2^B].

    Two's complement: ``sum_k c_k b_k`` (pattern ``2^(B-1)`` reads ``-2^(B-1)``). Sign-magnitude:
    ``(1 - 2 b_(B-1)) * sum_(k<B-1) 2^k b_k`` (negative zero reads 0).
    """
    encoding = check_encoding(encoding)
    b = code_bits(bits).astype(np.float64)
    if encoding == "twos":
        return b @ plane_coefficients(bits)
    mag = b[:, :-1] @ (2.0 ** np.arange(bits - 1))
    return (1.0 - 2.0 * b[:, -1]) * mag


def plane_matrices(rates: FlipRates) -> np.ndarray:
    """Per-plane channel matrices ``T_k[b, b~] = P(b~_k | b_k)``, float64[B, 2, 2]."""
    r = _check_rates(rates)
    t = np.empty((r.bits, 2, 2))
    t[:, 0, 0] = 1.0 - r.p_up
    t[:, 0, 1] = r.p_up
    t[:, 1, 0] = r.p_down
    t[:, 1, 1] = 1.0 - r.p_down
    return t


def apply_channel(rates: FlipRates, x: np.ndarray, *, adjoint: bool = False) -> np.ndarray:
    """Apply the exact transition law (T3) to a function or a distribution over codes.

    Parameters
    ----------
    rates : FlipRates
        Per-plane rates, B planes.
    x : ndarray of float, shape (..., 2^B)
        A distribution over stored codes (``adjoint=False``) or a function of the read code (``adjoint=True``).
    adjoint : bool
        ``False``: ``y(v) = sum_u x(u) P(v | u)``, the law of the read code when the stored code has law ``x``.
        ``True``: ``y(u) = sum_v P(v | u) x(v) = E[x(q~) | stored u]``.

    Returns
    -------
    ndarray of float64, shape (..., 2^B)
    """
    r = _check_rates(rates)
    x = np.asarray(x, dtype=np.float64)
    n_codes = 2**r.bits
    if x.shape[-1:] != (n_codes,):
        raise InputError(f"x has shape {x.shape}: its last axis must have 2^B = {n_codes} entries (one per code).")
    lead = x.shape[:-1]
    y = x.reshape(lead + (2,) * r.bits)
    t = plane_matrices(r)
    for k in range(r.bits):
        axis = len(lead) + r.bits - 1 - k          # C order: the first bit axis is the MSB
        m = t[k].T if adjoint else t[k]
        y = np.moveaxis(np.moveaxis(y, axis, -1) @ m, -1, axis)
    return np.ascontiguousarray(y).reshape(x.shape)


def transition_row(rates: FlipRates, code: int) -> np.ndarray:
    """``P(q~ = v | stored code)`` for every read pattern v: float64[2^B], any B (T3)."""
    r = _check_rates(rates)
    code = _check_code(code, r.bits)
    row = np.ones(1)
    t = plane_matrices(r)
    for k in range(r.bits - 1, -1, -1):          # MSB first, so the index is sum_k v_k 2^k
        row = np.kron(row, t[k][(code >> k) & 1])
    return row


def transition_matrix(rates: FlipRates) -> np.ndarray:
    """The exact ``2^B x 2^B`` transition matrix ``T[u, v] = P(q~ = v | q = u)`` (T3), for B <= 12.

    Rows are stored patterns, columns read patterns; every row sums to 1. In the symmetric case
    ``T[u, v]`` depends only on the flip mask ``u XOR v`` (:func:`mask_probabilities`).
    """
    r = _check_rates(rates)
    if r.bits > MAX_MATRIX_BITS:
        raise InputError(f"bits={r.bits}: the full transition matrix has 4^B entries; it is built for B <= "
                         f"{MAX_MATRIX_BITS}. Use transition_row(rates, code) or apply_channel() at larger B.")
    t = plane_matrices(r)
    m = np.ones((1, 1))
    for k in range(r.bits - 1, -1, -1):
        m = np.kron(m, t[k])
    return m


def mask_probabilities(p_flip: float, bits: int) -> np.ndarray:
    """Symmetric channel: ``P(flip mask) = p^|mask| (1-p)^(B-|mask|)`` for every mask, float64[2^B]."""
    bits = check_bits(bits)
    p = float(p_flip)
    if not 0.0 <= p < 0.5:
        raise InputError(f"p_flip={p_flip!r} must be in [0, 0.5): at 0.5 the stored bits carry no information.")
    weight = code_bits(bits).sum(axis=1)
    return p**weight * (1.0 - p) ** (bits - weight)


def _check_code(code: object, bits: int) -> int:
    if isinstance(code, bool) or not isinstance(code, int | np.integer) or not 0 <= int(code) < 2**bits:
        raise InputError(f"code={code!r} must be a stored pattern in 0..{2**bits - 1} for B={bits}.")
    return int(code)


# -- T1 and T2 ----------------------------------------------------------------------------------------------
def _magnitude_moments(r: FlipRates) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per code: E[b~_k], Var[b~_k] (float64[2^B, B]) and the plane bits."""
    b = code_bits(r.bits).astype(np.float64)
    mean = r.p_up + r.a * b
    var = np.where(b == 1.0, r.p_down * (1.0 - r.p_down), r.p_up * (1.0 - r.p_up))
    return mean, var, b


def mean_drift(rates: FlipRates, encoding: str = "twos") -> np.ndarray:
    """T1: ``E[q~ | stored code]`` for every code, float64[2^B] [code units].

    Two's complement: ``sum_k c_k pu_k + sum_k c_k a_k b_k`` (affine in the bits). Sign-magnitude:
    ``E[1 - 2 b~_s] * sum_(k<B-1) 2^k E[b~_k]``, the product of two independent factors, which is *not*
    affine in q (there is no ``a q - pu`` form).
    """
    r = _check_rates(rates)
    encoding = check_encoding(encoding)
    mean, _, _ = _magnitude_moments(r)
    if encoding == "twos":
        return mean @ plane_coefficients(r.bits)
    return (1.0 - 2.0 * mean[:, -1]) * (mean[:, :-1] @ (2.0 ** np.arange(r.bits - 1)))


def affine_drift(rates: FlipRates) -> tuple[float, float]:
    """T1 with uniform rates, two's complement: ``E[q~ | q] = gain * q + offset`` = ``a q - pu``.

    Raises
    ------
    InputError
        If the rates differ between planes or some planes are protected: the drift is then affine only
        in the unprotected part of q (use :func:`mean_drift`, which is exact for any rates).
    """
    r = _check_rates(rates)
    if not (np.all(r.p_down == r.p_down[0]) and np.all(r.p_up == r.p_up[0])):
        raise InputError("affine_drift() needs the same (p_down, p_up) on every plane; with per-plane rates or "
                         "protected planes use mean_drift(rates), which gives E[q~|q] code by code.")
    return float(r.a[0]), -float(r.p_up[0])


def conditional_variance(rates: FlipRates, encoding: str = "twos") -> np.ndarray:
    """T2: ``Var[q~ | stored code]`` for every code, float64[2^B] [code units^2].

    Two's complement: ``sum_k c_k^2 v_k(b_k)`` with ``v_k(1) = pd_k (1 - pd_k)``, ``v_k(0) = pu_k (1 - pu_k)``.
    Sign-magnitude: ``E[M~^2] - (E[s~] E[M~])^2`` (the sign ``s~ = +-1`` and the magnitude ``M~`` are
    independent and ``s~^2 = 1``).
    """
    r = _check_rates(rates)
    encoding = check_encoding(encoding)
    mean, var, _ = _magnitude_moments(r)
    if encoding == "twos":
        return var @ plane_coefficients(r.bits) ** 2
    w = 2.0 ** np.arange(r.bits - 1)
    m_mean = mean[:, :-1] @ w
    m_second = var[:, :-1] @ w**2 + m_mean**2
    s_mean = 1.0 - 2.0 * mean[:, -1]
    return m_second - (s_mean * m_mean) ** 2


def plane_variances(rates: FlipRates) -> np.ndarray:
    """T2 per plane (two's complement): ``c_k^2 v_k(b_k)`` for every code and plane, float64[2^B, B]."""
    r = _check_rates(rates)
    _, var, _ = _magnitude_moments(r)
    return var * plane_coefficients(r.bits) ** 2


def symmetric_variance(p_flip: float, bits: int) -> float:
    """T2, symmetric channel, two's complement: ``p (1-p) (4^B - 1) / 3`` [code units^2], for every code."""
    bits = check_bits(bits)
    return float(p_flip) * (1.0 - float(p_flip)) * (4.0**bits - 1.0) / 3.0


def top_plane_share(bits: int, m: int = 1) -> float:
    """Share of the T2 variance carried by the top ``m`` planes (two's complement, equal rates).

    ``(4^B - 4^(B-m)) / (4^B - 1)``: 75.0 %, 93.8 %, 98.4 % for the top 1, 2, 3 planes of an 8-bit code.
    It does **not** hold for sign-magnitude, where a sign flip moves q by ``2|q|``.
    """
    bits = check_bits(bits)
    if isinstance(m, bool) or not isinstance(m, int | np.integer) or not 0 <= m <= bits:
        raise InputError(f"m={m!r} must be an integer in 0..{bits} (number of top planes).")
    return (4.0**bits - 4.0 ** (bits - int(m))) / (4.0**bits - 1.0)


def weight_variance(rates: FlipRates, scale: float | np.ndarray, encoding: str = "twos") -> np.ndarray:
    """T4: ``Var[w~ | stored code] = s^2 Var[q~ | code]`` [weight units^2]; shape (2^B,) or (C, 2^B)."""
    s = np.asarray(scale, dtype=np.float64)
    v = conditional_variance(rates, encoding)
    return s[..., None] ** 2 * v if s.ndim else float(s) ** 2 * v


def residual_variance(rates: FlipRates, m: int = 0, p_one: float | np.ndarray | None = None) -> float:
    """``V_l(m)``: variance left after the per-plane correction with the top ``m`` planes protected.

    ``V_l(m) = sum_(k < B-m) c_k^2 v_k / a_k^2`` [code units^2] (docs/theory.md section 3), with
    ``v_k = p1_k pd_k (1-pd_k) + (1 - p1_k) pu_k (1-pu_k)``: the per-bit variance averaged over a stored 1
    with probability ``p1_k`` (``p_one``: a scalar or float[B] per plane, default 0.5; the result is exact
    for every code when ``pd = pu``). Symmetric closed form: ``p (1-p) / (1-2p)^2 * (4^(B-m) - 1) / 3``.
    """
    r = _check_rates(rates)
    if isinstance(m, bool) or not isinstance(m, int | np.integer) or not 0 <= m <= r.bits:
        raise InputError(f"m={m!r} must be an integer in 0..{r.bits} (protected top planes).")
    p1 = np.broadcast_to(np.asarray(0.5 if p_one is None else p_one, dtype=np.float64), (r.bits,))
    if np.any(p1 < 0) or np.any(p1 > 1):
        raise InputError(f"p_one={p_one!r} must hold probabilities in [0, 1] (P(stored bit = 1) per plane).")
    v = p1 * r.p_down * (1.0 - r.p_down) + (1.0 - p1) * r.p_up * (1.0 - r.p_up)
    live = np.arange(r.bits) < r.bits - int(m)
    return float(np.sum((plane_coefficients(r.bits) ** 2 * v / r.a**2)[live]))


def conditional_moments(rates: FlipRates, encoding: str = "twos") -> dict[str, np.ndarray]:
    """Exact mean, variance and 4th central moment of ``q~`` for every stored code, from the law T3.

    Computed by :func:`apply_channel` (not from the T1/T2 closed forms), so it serves as an independent
    check of them and as the source of Monte Carlo tolerances: ``sd(sample variance) ~ sqrt((mu4 - var^2) / n)``.
    """
    r = _check_rates(rates)
    q = code_values(r.bits, encoding)
    raw = apply_channel(r, np.stack([q**j for j in range(1, 5)]), adjoint=True)
    mu = raw[0]
    var = raw[1] - mu**2
    mu4 = raw[3] - 4 * mu * raw[2] + 6 * mu**2 * raw[1] - 3 * mu**4
    return {"mean": mu, "var": np.maximum(var, 0.0), "mu4": np.maximum(mu4, 0.0)}


def variance_share(rates: FlipRates, planes, encoding: str = "twos", histogram: np.ndarray | None = None) -> float:
    """Share of the variance due to the given planes: ``E_pi Var[q~ | only planes noisy] / E_pi Var[q~ | all]``.

    For two's complement the planes' variances add (T2), and with equal rates the top plane's share is
    :func:`top_plane_share`. For sign-magnitude they do not add, and the sign plane's share depends on the
    histogram: it is *not* ``3 * 4^(B-1) / (4^B - 1)``.
    """
    r = _check_rates(rates)
    keep = np.zeros(r.bits, dtype=bool)
    keep[list(planes)] = True
    only = FlipRates(np.where(keep, r.p_down, 0.0), np.where(keep, r.p_up, 0.0))
    pi = _histogram(histogram, r.bits, encoding)
    total = float(pi @ conditional_variance(r, encoding))
    return float(pi @ conditional_variance(only, encoding)) / total if total > 0 else 0.0


# -- lookup tables: exact bias and MSE -------------------------------------------------------------------------
def lut_error_moments(rates: FlipRates, g: np.ndarray, encoding: str = "twos") -> dict[str, np.ndarray]:
    """Exact conditional moments of a lookup table's error ``e = g(q~) - q`` for every stored code.

    Parameters
    ----------
    rates : FlipRates
    g : ndarray of float, shape (2^B,)
        The table in code units: read pattern -> corrected value (``lut / scale``).
    encoding : {"twos", "signmag"}

    Returns
    -------
    dict of float64[2^B]
        ``"bias"`` = E[e | u], ``"m2"`` = E[e^2 | u] (the per-code MSE), ``"m4"`` = E[e^4 | u].
    """
    r = _check_rates(rates)
    g = np.asarray(g, dtype=np.float64)
    q = code_values(r.bits, encoding)
    powers = apply_channel(r, np.stack([g**j for j in range(1, 5)]), adjoint=True)  # E[g^j | u]
    e = [np.ones_like(q)] + [powers[j - 1] for j in range(1, 5)]
    def central(n: int) -> np.ndarray:  # E[(g - q)^n | u] by the binomial expansion
        return sum(math.comb(n, j) * e[j] * (-q) ** (n - j) for j in range(n + 1))
    return {"bias": central(1), "m2": central(2), "m4": central(4)}


def lut_bias_mse(rates: FlipRates, g: np.ndarray, histogram: np.ndarray | None = None,
                 encoding: str = "twos") -> tuple[float, float]:
    """Mean bias and MSE of a lookup table in code units, averaged over the clean codes' histogram.

    ``histogram`` (float64[2^B], e.g. :func:`wkbnoise.quant.code_histogram`) defaults to all valid codes
    (``-q_max..q_max``) equally likely. Multiply the MSE by ``s^2`` for weight units.
    """
    mom = lut_error_moments(rates, g, encoding)
    pi = _histogram(histogram, rates.bits, encoding)
    return float(pi @ mom["bias"]), float(pi @ mom["m2"])


def _histogram(histogram: np.ndarray | None, bits: int, encoding: str) -> np.ndarray:
    if histogram is None:
        q = code_values(bits, encoding)
        valid = np.abs(q) <= 2 ** (bits - 1) - 1
        if encoding == "signmag":
            valid &= np.arange(2**bits) != 2 ** (bits - 1)      # negative zero is never stored
        return valid / valid.sum()
    h = np.asarray(histogram, dtype=np.float64)
    if h.shape != (2**bits,) or np.any(h < 0) or not np.isfinite(h).all() or h.sum() <= 0:
        raise InputError(f"histogram must be 2^B = {2**bits} non-negative frequencies with a positive sum "
                         "(use code_histogram(qt)).")
    return h / h.sum()


def gaussian_variance(rates: FlipRates, encoding: str = "twos", histogram: np.ndarray | None = None) -> float:
    """The Gaussian model's variance: T2 averaged over the clean histogram [code units^2].

    The Gaussian model replaces the discrete, heavy-tailed error of T3 by ``N(drift, sigma^2)`` with this
    ``sigma^2``; it matches the variance and misses the atoms at ``+-2^(B-1)``, ``+-2^(B-2)``, ...
    """
    return float(_histogram(histogram, rates.bits, encoding) @ conditional_variance(rates, encoding))


def gaussian_tail_probability(variance: float, threshold: float) -> float:
    """``P(|X| >= threshold)`` for ``X ~ N(0, variance)``."""
    if variance <= 0:
        return 0.0 if threshold > 0 else 1.0
    return math.erfc(threshold / math.sqrt(2.0 * variance))


def error_law(rates: FlipRates, code: int, encoding: str = "twos") -> tuple[np.ndarray, np.ndarray]:
    """Exact law of the error ``q~ - q`` for one stored code (T3): sorted error values and probabilities."""
    r = _check_rates(rates)
    row = transition_row(r, code)
    q = code_values(r.bits, encoding)
    err = q - q[int(code)]
    values, inverse = np.unique(err, return_inverse=True)
    return values, np.bincount(inverse, weights=row, minlength=values.size)
