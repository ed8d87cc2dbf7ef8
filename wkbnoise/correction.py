"""Drift-correcting lookup tables: read code -> corrected weight (docs/theory.md section 4).

Every correction is a table ``g`` of ``2^B`` values applied when the weights are dequantized
(``w = lut[read code]``, :func:`wkbnoise.faults.flip_dequantize`): no retraining, no labels, no extra
inference work. Methods:

- ``none``: the plain value ``q(v) * s``.
- ``affine`` (two's complement, the same rates on every plane, nothing protected): ``(q~ + pu) / a``; unbiased.
- ``per-plane``: ``sum_k c_k (b~_k - pu_k) / a_k``; unbiased for any per-plane rates and protection, with
  variance ``V_l`` (:func:`wkbnoise.theory.residual_variance`). For sign-magnitude the unbiased form is the
  product ``(1 - 2 b^_s) * sum_(k<B-1) 2^k b^_k`` of the per-plane estimates ``b^_k = (b~_k - pu_k) / a_k``
  (sign and magnitude planes are independent).
- ``bayes``: the MMSE table ``E[q | q~ = v]`` under the layer's clean histogram ``pi``; biased, smallest MSE.
- ``bayes-gain``: ``bayes`` rescaled by ``E[u^2] / E[u g(v)]`` so the layer keeps its clean gain.

Sign-magnitude codes have no affine drift, so ``affine`` refuses them and names the alternatives.

Examples
--------
>>> from wkbnoise import FlipRates
>>> r = FlipRates.symmetric(0.1, bits=4)
>>> correction_table(r, method="affine")[:3].tolist()     # codes 0, 1, 2 read as (q + 0.1) / 0.8
[0.125, 1.375, 2.625]
"""

from __future__ import annotations

import numpy as np

from .errors import InputError
from .rates import FlipRates
from .theory import _histogram, apply_channel, check_encoding, code_bits, code_values, plane_coefficients

__all__ = ["METHODS", "build_lut", "correction_table", "code_histogram"]

METHODS = ("none", "affine", "per-plane", "bayes", "bayes-gain")


def correction_table(rates: FlipRates, *, encoding: str = "twos", method: str = "none",
                     histogram: np.ndarray | None = None) -> np.ndarray:
    """The correction ``g(v)`` in code units for every read pattern v, float64[2^B].

    Parameters
    ----------
    rates : FlipRates
        The rates the codes are read with (protected planes at 0).
    encoding : {"twos", "signmag"}
    method : {"none", "affine", "per-plane", "bayes", "bayes-gain"}
    histogram : ndarray of float, shape (2^B,), optional
        Clean code histogram ``pi`` (:func:`code_histogram`); required by ``bayes`` and ``bayes-gain``.

    Raises
    ------
    InputError
        ``affine`` on sign-magnitude codes, on per-plane rates or with protected planes; ``bayes`` without
        a histogram; an unknown method.
    """
    if not isinstance(rates, FlipRates):
        raise InputError(f"rates must be a FlipRates, not {type(rates).__name__}.")
    encoding = check_encoding(encoding)
    if method not in METHODS:
        raise InputError(f"method={method!r} must be one of {', '.join(METHODS)}.")
    q = code_values(rates.bits, encoding)
    if method == "none":
        return q
    if method == "affine":
        return _affine(rates, encoding, q)
    if method == "per-plane":
        return _per_plane(rates, encoding)
    if histogram is None:
        raise InputError(f"method={method!r} needs the layer's clean code histogram: pass "
                         "histogram=code_histogram(qt).")
    pi = _histogram(histogram, rates.bits, encoding)
    num = apply_channel(rates, q * pi)           # sum_u u pi(u) T(v|u)
    den = apply_channel(rates, pi)               # sum_u pi(u) T(v|u) = P(read v)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.where(den > 0, num / np.where(den > 0, den, 1.0), q)   # unreachable codes: plain value
    if method == "bayes":
        return g
    cross = float(g @ num)                       # E[u g(v)] = sum_v g(v) sum_u u pi(u) T(v|u)
    energy = float(pi @ q**2)                    # E[u^2]
    return g * (energy / cross) if cross > 0 else g


def _affine(rates: FlipRates, encoding: str, q: np.ndarray) -> np.ndarray:
    if encoding == "signmag":
        raise InputError("method='affine' does not apply to sign-magnitude codes: their mean drift is not affine in "
                         "q. Use method='per-plane' (unbiased) or method='bayes' (MMSE).")
    live = (rates.p_down > 0) | (rates.p_up > 0)
    if not np.any(live):
        return q.copy()
    if not (np.all(live) and np.all(rates.p_down == rates.p_down[0]) and np.all(rates.p_up == rates.p_up[0])):
        raise InputError("method='affine' needs the same (p_down, p_up) on every plane and no protected planes (the "
                         "drift is then a q - pu). Use method='per-plane', which is unbiased for per-plane rates "
                         "and protection.")
    return (q + rates.p_up[0]) / rates.a[0]


def _per_plane(rates: FlipRates, encoding: str) -> np.ndarray:
    b_hat = (code_bits(rates.bits) - rates.p_up) / rates.a        # unbiased estimate of each stored bit
    if encoding == "twos":
        return b_hat @ plane_coefficients(rates.bits)
    mag = b_hat[:, :-1] @ (2.0 ** np.arange(rates.bits - 1))
    return (1.0 - 2.0 * b_hat[:, -1]) * mag


def build_lut(rates: FlipRates, scale: float | np.ndarray, *, encoding: str = "twos", method: str = "none",
              histogram: np.ndarray | None = None) -> np.ndarray:
    """The float32 lookup table ``lut[read code]`` = corrected weight [weight units], scale included.

    Parameters
    ----------
    rates : FlipRates
        Per-plane rates the codes are read with (protected planes at 0).
    scale : float or ndarray of float, shape () or (C,)
        The quantization step ``s_l`` [weight units per code step] (``QuantizedTensor.scale``), >= 0.
    encoding : {"twos", "signmag"}
    method : {"none", "affine", "per-plane", "bayes", "bayes-gain"}
        See the module docstring and :func:`correction_table`.
    histogram : ndarray, optional
        Clean code histogram for ``bayes`` / ``bayes-gain``.

    Returns
    -------
    ndarray of float32, shape (2^B,) or (C, 2^B)
        One row per output channel when ``scale`` has shape (C,).
    """
    s = np.asarray(scale)
    if s.dtype.kind not in "fiu" or s.ndim > 1 or not np.all(np.isfinite(s)) or np.any(s < 0):
        raise InputError(f"scale={scale!r} must be a finite float >= 0 or a 1-D array of them "
                         "(QuantizedTensor.scale).")
    g = correction_table(rates, encoding=encoding, method=method, histogram=histogram)
    s = s.astype(np.float64)
    lut = (s[:, None] * g[None, :]) if s.ndim == 1 else float(s) * g
    return np.ascontiguousarray(lut, dtype=np.float32)


def code_histogram(qt) -> np.ndarray:
    """The clean code histogram of a :class:`~wkbnoise.quant.QuantizedTensor` (see :func:`wkbnoise.quant.code_histogram`)."""
    from .quant import code_histogram as _ch

    return _ch(qt)
