"""ECC models: what a protected plane costs in check bits and how often it still errs (theory section 7).

``ideal``
    A protected plane never errs; its cost is counted in protected data bits only.
``secded-72-64``, ``secded-39-32``
    Hamming single-error-correcting, double-error-detecting codes over words of 64 / 32 data bits.
``bch-K-tT``
    A (shortened) binary BCH code with ``K`` data bits per word correcting ``T`` errors,
    ``m * T`` check bits where ``m`` is the smallest field degree with ``2^m - 1 >= K + m T``.

A word of ``n`` stored bits (data and check) with independent raw bit errors at rate ``p`` fails when
more than ``t`` bits err: ``P_word = P(Binomial(n, p) > t)``. The post-decoding error rate of a data bit
is the standard estimate ``p_out = sum_{i > t} beta_i / n * P(Binomial(n, p) = i)``, where a failed word
carries ``beta_i`` wrong bits spread evenly over the word: ``beta_i = i`` when the error is detected but
not corrected (SECDED on two errors), ``beta_i = min(i + t, n)`` when the decoder may miscorrect.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
from .errors import InputError
from .rates import FlipRates

__all__ = ["Code", "get_code", "CODE_NAMES", "code_table", "protected_rates"]


@dataclass(frozen=True)
class Code:
    """A block code protecting words of ``k`` data bits with ``n - k`` check bits.

    Parameters
    ----------
    name : str
        Name as the CLI spells it (``"ideal"``, ``"secded-72-64"``, ``"bch-64-t3"``).
    n, k : int
        Stored bits per word and data bits per word (``n = k = 0`` for ``ideal``).
    t : int
        Errors corrected per word.
    detect : int
        Errors detected (not corrected) per word beyond ``t`` (1 for SECDED, 0 otherwise).
    """

    name: str
    n: int
    k: int
    t: int
    detect: int = 0

    @property
    def is_ideal(self) -> bool:
        """True for the ideal code (never errs, no check bits)."""
        return self.k == 0

    @property
    def redundancy(self) -> float:
        """Check bits per protected data bit, ``r = (n - k) / k`` [dimensionless] (0 for ideal)."""
        return 0.0 if self.is_ideal else (self.n - self.k) / self.k

    def check_bits(self, data_bits: int) -> int:
        """Check bits needed to protect ``data_bits`` data bits: ``ceil(data_bits / k) * (n - k)``."""
        if self.is_ideal or data_bits <= 0:
            return 0
        return int(math.ceil(int(data_bits) / self.k)) * (self.n - self.k)

    def word_failure(self, p: float | np.ndarray) -> np.ndarray:
        """P(more than ``t`` of the ``n`` stored bits of a word err) at raw bit error rate ``p`` [per word]."""
        p = np.asarray(p, dtype=np.float64)
        if self.is_ideal:
            return np.zeros_like(p)
        i = np.arange(self.t + 1, self.n + 1)
        return _binom_pmf(i[:, None], self.n, np.atleast_1d(p)[None, :]).sum(axis=0).reshape(p.shape)

    def residual_bit_error(self, p: float | np.ndarray) -> np.ndarray:
        """Post-decoding error rate of one data bit at raw bit error rate ``p`` [per bit]."""
        p = np.asarray(p, dtype=np.float64)
        if self.is_ideal:
            return np.zeros_like(p)
        i = np.arange(self.t + 1, self.n + 1)
        beta = np.minimum(i + self.t, self.n).astype(np.float64)
        if self.detect:
            detected = i <= self.t + self.detect
            beta[detected] = i[detected]
        pmf = _binom_pmf(i[:, None], self.n, np.atleast_1d(p)[None, :])
        out = (beta[:, None] / self.n * pmf).sum(axis=0)
        return out.reshape(p.shape)


def _binom_pmf(i: np.ndarray, n: int, p: np.ndarray) -> np.ndarray:
    """``P(Binomial(n, p) = i)`` in log space (exact to float64 rounding; no SciPy import at start-up)."""
    from math import lgamma

    log_c = np.vectorize(lambda k: lgamma(n + 1) - lgamma(k + 1) - lgamma(n - k + 1))(i).astype(np.float64)
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.exp(log_c + i * np.log(p) + (n - i) * np.log1p(-p))
    return np.where(p > 0, out, (i == 0).astype(np.float64))


_FIXED = {
    "ideal": Code("ideal", 0, 0, 0),
    "secded-72-64": Code("secded-72-64", 72, 64, 1, 1),
    "secded-39-32": Code("secded-39-32", 39, 32, 1, 1),
}
CODE_NAMES = (*_FIXED, "bch-K-tT")
_BCH = re.compile(r"^bch-(\d+)-t(\d+)$")


def get_code(name: str) -> Code:
    """The code called ``name``: ``ideal``, ``secded-72-64``, ``secded-39-32`` or ``bch-K-tT``.

    Examples
    --------
    >>> c = get_code("bch-64-t3")
    >>> c.n, c.k, c.t, c.check_bits(64)
    (85, 64, 3, 21)
    """
    if isinstance(name, Code):
        return name
    if not isinstance(name, str):
        raise InputError(f"code={name!r} must be a code name such as 'ideal', 'secded-72-64' or 'bch-64-t3'.")
    if name in _FIXED:
        return _FIXED[name]
    match = _BCH.match(name)
    if match:
        k, t = int(match.group(1)), int(match.group(2))
        if not (1 <= k <= 4096 and 1 <= t <= 64):
            raise InputError(f"code={name!r}: BCH needs 1 <= K <= 4096 data bits and 1 <= T <= 64 errors.")
        m = 2
        while (1 << m) - 1 < k + m * t:
            m += 1
        return Code(name, k + m * t, k, t)
    raise InputError(
        f"code={name!r} is not a known code. Use one of ideal, secded-72-64, secded-39-32 or bch-K-tT "
        "(e.g. bch-64-t3)."
    )


def protected_rates(rates: FlipRates, m: int, code: str | Code = "ideal") -> FlipRates:
    """Rates of a tensor whose top ``m`` planes are protected by ``code``.

    The protected planes keep the residual post-decoding rate of the code at the plane's raw error
    rate ``(p_down + p_up) / 2`` (bits in a codeword are taken as balanced), split between the two
    directions in the raw proportion; an ideal code sets them to zero. Where the code no longer delivers
    protection (residual above the raw rate, e.g. at raw rates near 1/2), the raw rates are kept.
    """
    code = get_code(code)
    if code.is_ideal:
        return rates.protect_top(int(m))
    if not 0 <= int(m) <= rates.bits:
        raise InputError(f"m={m!r} protected planes must be an integer in 0..{rates.bits}.")
    pd, pu = rates.p_down.copy(), rates.p_up.copy()
    for k in range(rates.bits - int(m), rates.bits):
        raw = 0.5 * (pd[k] + pu[k])
        if raw > 0:
            ratio = min(float(code.residual_bit_error(raw)) / raw, 1.0)
            pd[k] *= ratio
            pu[k] *= ratio
    return FlipRates(pd, pu)


def code_table(p_values, codes=("secded-72-64", "secded-39-32", "bch-64-t3", "bch-64-t8")) -> list[dict]:
    """Rows (code, raw p, word failure, residual bit error, check bits per data bit) for each pair.

    A code "delivers protection" at ``p`` when its residual bit error rate is below the raw one.
    """
    rows = []
    for name in codes:
        code = get_code(name)
        for p in np.atleast_1d(np.asarray(p_values, dtype=np.float64)):
            res = float(code.residual_bit_error(p))
            rows.append({
                "code": code.name, "n": code.n, "k": code.k, "t": code.t, "p_raw": float(p),
                "word_failure": float(code.word_failure(p)), "residual_bit_error": res,
                "redundancy": code.redundancy, "protects": bool(res < p),
            })
    return rows
