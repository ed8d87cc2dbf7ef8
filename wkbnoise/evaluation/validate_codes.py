"""``validate --code NAME``: the analytic ECC model of :mod:`wkbnoise.ecc` beside the decoded simulation.

Rows per raw bit error rate ``p`` (1e-4, 1e-3, 1e-2 by default), for the real code ``NAME``:

``word failure``
    ``P(more than t of the n stored bits err)`` (binomial) against the fraction of simulated words that a
    bounded-distance decoder returns as anything but the stored codeword (detected or miscorrected).
    The two are equal for a correct decoder under symmetric rates: a PASS/FAIL row, tolerance
    ``z`` binomial standard errors.
``residual data-bit error``
    :meth:`wkbnoise.ecc.Code.residual_bit_error` (failed words carry ``i`` wrong bits when detected and
    ``i + t`` when miscorrected, spread evenly over the word) against the decoded rate of wrong data bits.
    Measured two ways: by direct simulation of ``words`` random words, and *stratified* by the number
    ``i`` of stored errors (``i = t + 1 .. t + 3`` sampled exactly, ``i`` random positions per word,
    combined with the binomial weights ``P(Bin(n, p) = i)``; the rest of the tail taken from the
    analytic formula), which resolves rates far below ``1 / words``. The analytic value is an
    approximation: the row passes when it is within tolerance and is INFO otherwise, with the ratio.
``asymmetric``
    The same direct simulation with ``p_down = 2p`` and ``p_up = 0`` (a charge-loss cell at the same mean
    raw rate ``p`` over balanced bits), against the analytic value at ``p`` (INFO).
"""

from __future__ import annotations

import math

import numpy as np

from .._rng import derive_keys
from ..codes import real_code
from ..codes.storage import simulate_words
from ..ecc import _binom_pmf, get_code
from .validate import Context, Row, mean_row

__all__ = ["code_producer", "RAW_RATES", "stratified_residual"]

RAW_RATES = (1e-4, 1e-3, 1e-2)


def stratified_residual(name: str, p: float, per_stratum: int, seed: int = 0) -> tuple[float, float, dict]:
    """Decoded residual data-bit error rate at symmetric raw rate ``p``, stratified by the error count.

    Returns
    -------
    rate, se : float
        The estimate [per data bit] and its standard error.
    strata : dict
        ``i -> (mean wrong data bits per word given i errors, its standard error)`` for ``i = t+1..t+3``.
    """
    code = real_code(name)
    n, k, t = code.n, code.k, code.t
    rng = np.random.default_rng(derive_keys(seed, (12, int(round(-1e3 * math.log10(p)))), 1)[0])
    strata = {}
    rate = var = 0.0
    for i in range(t + 1, t + 4):
        data = rng.integers(0, 2**63, per_stratum, dtype=np.uint64) << np.uint64(1)
        data ^= rng.integers(0, 2, per_stratum, dtype=np.uint64)
        if k < 64:
            data &= np.uint64((1 << k) - 1)
        check = code.encode(data)
        pos = np.argsort(rng.random((per_stratum, n)), axis=1)[:, :i]
        e = np.zeros((per_stratum, n), dtype=np.uint64)
        np.put_along_axis(e, pos, 1, axis=1)
        shift = np.arange(n, dtype=np.uint64)
        e_data = (e[:, :k] << shift[:k]).sum(axis=1, dtype=np.uint64)
        e_chk = (e[:, k:] << (shift[k:] - np.uint64(k))).sum(axis=1, dtype=np.uint64)
        out, _, _ = code.decode(data ^ e_data, check ^ e_chk)
        wrong = np.array([bin(int(x)).count("1") for x in (out ^ data)], dtype=np.float64)
        mean, se = float(wrong.mean()), float(wrong.std(ddof=1) / math.sqrt(per_stratum))
        strata[i] = (mean, se)
        w = float(_binom_pmf(np.array([i]), n, np.array([p]))[0])
        rate += w * mean / k
        var += (w * se / k) ** 2
    j = np.arange(t + 4, n + 1)
    beta = np.minimum(j + t, n).astype(np.float64)
    tail = float((beta / n * _binom_pmf(j[:, None], n, np.array([p])[None, :])[:, 0]).sum())
    return rate + tail, math.sqrt(var), strata


def code_producer(name: str, rates=RAW_RATES, words: int = 1 << 22, per_stratum: int = 1 << 14, seed: int = 0):
    """A row producer (``producer(ctx) -> rows``) for the real code ``name``."""
    code = real_code(name)
    spec = get_code(name)

    def producer(ctx: Context) -> list[Row]:
        z = ctx.config.z
        rows = []
        for i_p, p in enumerate(rates):
            label = f"{name} p={p:g}"
            sim = simulate_words(code, p, p, words, derive_keys(seed, (12, i_p, 0), 1)[0])
            wf = float(spec.word_failure(p))
            rows.append(mean_row(label, f"word failure P(> {code.t} of {code.n} err), {words} words", wf,
                                 sim["words_wrong"] / words, max(math.sqrt(wf * (1 - wf) / words), 1.0 / words), z,
                                 f"detected {sim['detected']}, miscorrected {sim['miscorrected']}"))
            res = float(spec.residual_bit_error(p))
            rows.append(_approx_row(label, "residual data-bit error, direct", res, *_direct(sim, code.k), z))
            strat, se, strata = stratified_residual(name, p, per_stratum, seed)
            note = ", ".join(f"E[wrong|{i}]={m:.3g}" for i, (m, _) in sorted(strata.items()))
            rows.append(_approx_row(label, f"residual data-bit error, stratified ({per_stratum}/stratum)", res,
                                    strat, se, z, note))
            asym = simulate_words(code, min(2 * p, 0.999), 0.0, words, derive_keys(seed, (12, i_p, 1), 1)[0])
            rows.append(_ratio_row(label, "asymmetric p_down=2p, p_up=0: word failure", wf,
                                   asym["words_wrong"] / words))
            rows.append(_ratio_row(label, "asymmetric p_down=2p, p_up=0: residual data-bit error", res,
                                   _direct(asym, code.k)[0]))
        return rows

    return producer


def _direct(sim: dict, k: int) -> tuple[float, float]:
    w = sim["n_words"]
    mean = sim["data_bits_wrong"] / w
    var = max(sim["data_bits_wrong_sq"] / w - mean**2, 0.0)
    return mean / k, max(math.sqrt(var / w) / k, 1.0 / (w * k))


def _approx_row(check: str, quantity: str, theory: float, measured: float, se: float, z: float, note: str = ""):
    row = mean_row(check, quantity, theory, measured, se, z, note)
    if row.status == "FAIL":
        ratio = theory / measured if measured > 0 else math.inf
        return Row(check, quantity, theory, measured, row.tolerance, "INFO",
                   f"analytic / decoded = {ratio:.3g}" + (f"; {note}" if note else ""))
    return row


def _ratio_row(check: str, quantity: str, theory: float, measured: float) -> Row:
    note = f"analytic / decoded = {theory / measured:.3g}" if measured > 0 else "no decoded error in the sample"
    return Row(check, quantity, theory, measured, 0.0, "INFO", note)
