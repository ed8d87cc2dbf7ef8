"""A layer's protected planes stored as codewords of a real code: flip every stored bit, decode, read.

The top ``m`` planes of a layer's ``N`` stored codes form a stream of ``N m`` data bits, weight after weight
(data bit ``d`` is plane ``B - m + d mod m`` of weight ``floor(d / m)``), cut into words of ``k`` bits; each
word is stored with its ``n - k`` check bits (the last word, shorter, is a further-shortened codeword: its
missing data bits are known zeros, not stored, and never err). Every stored bit flips independently at the
cell's rates for its stored value: a data bit at its plane's ``p_down`` (stored 1) or ``p_up`` (stored 0), a
check bit at the mean of the protected planes' ``p_down`` / ``p_up`` (the cell's rates when the planes share
them, as the physics gives). Each word is then decoded by the code's syndrome table (corrections,
detections left as read, and miscorrections) and its data bits written back to their planes.

Draws: stored bit ``j`` of word ``w`` flips when ``uniform(key_c, w n + j) < rate``, with the sub-key
``key_c = hash64(key, 2^64 - 2)`` of the layer's key, so the codeword draws never share a counter with the
unprotected planes' draws (:func:`wkbnoise.faults.flip_codes` with ``key``). Results are bit-identical at
any thread count and equal to the NumPy twin in ``tests/reference.py``.
"""

from __future__ import annotations

import numpy as np

from .._rng import check_key, hash_ref
from ..errors import InputError
from ..rates import FlipRates
from . import _kernels
from .block import BlockCode, real_code

__all__ = ["flip_protected", "read_stored", "codeword_key", "words_of", "simulate_words", "OUTCOMES", "CODEWORD_COUNTER"]

CODEWORD_COUNTER = (1 << 64) - 2        # counter of the codeword sub-key (no element counter reaches it)
_BLOCK_WORDS = 64                       # words per parallel block, times m / gcd(m, k): whole weights per block


def codeword_key(key: int) -> np.uint64:
    """The sub-key of the codeword draws of a layer whose key is ``key``."""
    return hash_ref(check_key(key), np.array([CODEWORD_COUNTER], dtype=np.uint64))[0]


def words_of(n_weights: int, m: int, code: BlockCode | str) -> int:
    """Codewords that store ``m`` protected planes of ``n_weights`` weights: ``ceil(n_weights m / k)``."""
    code = real_code(code) if isinstance(code, str) else code
    return -(-int(n_weights) * int(m) // code.k)


def flip_protected(codes: np.ndarray, rates: FlipRates, m: int, code: BlockCode | str, key: int,
                   out: np.ndarray) -> np.ndarray:
    """XOR into ``out`` the residual (post-decoding) errors of the top ``m`` planes of ``codes``.

    Parameters
    ----------
    codes : ndarray of uint8 (B <= 8) or uint16, C-contiguous
        Stored codes of one layer.
    rates : FlipRates
        Raw per-plane rates of the cell [per bit]; planes ``B - m .. B - 1`` are the protected ones.
    m : int
        Protected top planes, 1..B.
    code : BlockCode or str
        A real code (:data:`wkbnoise.codes.REAL_CODES`).
    key : int
        uint64 key of this layer and trial (the same as for the unprotected planes).
    out : ndarray
        Same dtype and shape as ``codes``; modified in place (it usually holds the read unprotected planes).

    Returns
    -------
    ndarray
        ``out``.
    """
    code = real_code(code) if isinstance(code, str) else code
    if not isinstance(rates, FlipRates):
        raise InputError(f"rates must be a FlipRates, not {type(rates).__name__}.")
    bits = rates.bits
    if isinstance(m, bool) or not isinstance(m, int | np.integer) or not 1 <= int(m) <= bits:
        raise InputError(f"m={m!r} protected planes must be an integer in 1..{bits}.")
    want = np.dtype(np.uint8) if bits <= 8 else np.dtype(np.uint16)
    for name, a in (("codes", codes), ("out", out)):
        if not isinstance(a, np.ndarray) or a.dtype != want or not a.flags.c_contiguous:
            raise InputError(f"{name} must be a C-contiguous {want} array (B = {bits} stored codes).")
    if out.shape != codes.shape or not out.flags.writeable:
        raise InputError(f"out must be a writeable array of the codes' shape {codes.shape}.")
    m = int(m)
    pd = np.ascontiguousarray(rates.p_down[bits - m:], dtype=np.float64)
    pu = np.ascontiguousarray(rates.p_up[bits - m:], dtype=np.float64)
    if not np.any(pd) and not np.any(pu):
        return out
    block = np.int64(_BLOCK_WORDS * (m // np.gcd(m, code.k)))
    _kernels._flip_protected(codes.reshape(-1), np.int64(bits), np.int64(m), np.int64(code.k),
                             np.int64(code.n_check), code.enc, code.index, code.pat_data, pd, pu,
                             np.float64(pd.mean()), np.float64(pu.mean()), codeword_key(key), block, out.reshape(-1))
    return out


def read_stored(codes: np.ndarray, rates: FlipRates, m: int, code: BlockCode | str, key: int,
                out: np.ndarray | None = None) -> np.ndarray:
    """The codes read back from a memory where the top ``m`` planes are stored as codewords of ``code``.

    Unprotected planes flip as in :func:`wkbnoise.faults.flip_codes` (with ``key``); protected planes go
    through :func:`flip_protected`. ``m = 0`` is plain flipping.
    """
    from ..faults import flip_codes

    r = rates if isinstance(rates, FlipRates) else None
    if r is None:
        raise InputError(f"rates must be a FlipRates, not {type(rates).__name__}.")
    if out is None:
        out = np.empty_like(codes)
    low = r.protect_top(int(m))
    if np.any(low.p_down) or np.any(low.p_up):
        flip_codes(codes, low, key, out=out)
    else:
        out[...] = codes
    if int(m) > 0:
        flip_protected(codes, r, int(m), code, key, out)
    return out


#: names of :func:`simulate_words`' tallies
OUTCOMES = ("words_over_t", "words_wrong", "data_bits_wrong", "detected", "miscorrected", "data_bits_wrong_sq")


def simulate_words(code: BlockCode | str, p_down: float, p_up: float, n_words: int, key: int,
                   block: int = 1 << 14) -> dict:
    """Store ``n_words`` random data words, flip every stored bit, decode: the tallies of the outcomes.

    Parameters
    ----------
    code : BlockCode or str
    p_down, p_up : float
        P(stored 1 reads 0), P(stored 0 reads 1) of every stored bit (data and check) [per bit].
    n_words : int
        Words simulated (>= 1).
    key : int
        uint64 key; word ``w``'s data are the low ``k`` bits of ``hash64(key, w)``.
    block : int
        Words per parallel block (the tallies do not depend on it).

    Returns
    -------
    dict
        ``n_words`` and the counts of :data:`OUTCOMES`: words with more than ``t`` stored errors, words
        decoded to another word than the stored codeword, data bits wrong after decoding (and the sum of
        their squares per word), words detected, words miscorrected.
    """
    code = real_code(code) if isinstance(code, str) else code
    for name, p in (("p_down", p_down), ("p_up", p_up)):
        if not 0.0 <= float(p) < 1.0:
            raise InputError(f"{name}={p!r} must be a probability in [0, 1).")
    if isinstance(n_words, bool) or not isinstance(n_words, int | np.integer) or n_words < 1:
        raise InputError(f"n_words={n_words!r} must be an integer >= 1.")
    n_blocks = -(-int(n_words) // int(block))
    counts = np.zeros((n_blocks, len(OUTCOMES)), dtype=np.int64)
    _kernels._word_outcomes(np.int64(n_words), np.int64(code.k), np.int64(code.n_check), np.int64(code.t),
                            code.enc, code.index, code.pat_data, code.pat_check, np.float64(p_down),
                            np.float64(p_up), check_key(key), np.int64(block), counts)
    out = dict(zip(OUTCOMES, (int(c) for c in counts.sum(axis=0)), strict=True))
    out["n_words"] = int(n_words)
    return out
