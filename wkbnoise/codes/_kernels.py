"""Numba kernels of the real codes: encode, syndrome-table decode, store-flip-decode a layer's protected planes.

Words are held as two uint64: ``data`` (bit ``j`` = data bit ``j``, ``k <= 64``) and ``check`` (bit ``i`` =
check bit ``i``, ``n - k <= 64``). Check bits are ``data @ P mod 2``, computed with a byte table:
``enc[j, v]`` = the check bits of the byte value ``v`` at data byte ``j``. The syndrome of a received word is
``enc(data) ^ check``, and equals the syndrome of its error pattern (the code is linear).

The decoder is a syndrome table: ``index[s]`` is the id of the unique error pattern of weight ``<= t``
with syndrome ``s`` (``-1`` when none has it: a detected, uncorrectable word); ``pat_data[id]``,
``pat_check[id]`` are that pattern. Every kernel has a NumPy twin in ``tests/reference.py``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .._rng import _hash64, _uniform

_ONE = np.uint64(1)
_BYTE = np.uint64(255)


@njit(cache=True, nogil=True, inline="always")
def _check_bits(data, enc):
    """uint64 data word, uint64[8, 256] byte table -> uint64 check bits."""
    c = np.uint64(0)
    for j in range(8):
        c ^= enc[j, np.int64((data >> np.uint64(8 * j)) & _BYTE)]
    return c


@njit(cache=True, nogil=True, parallel=True)
def _encode_words(data, enc, out):
    """data: uint64[n]; enc: uint64[8, 256]; out: uint64[n] check bits."""
    for i in prange(data.shape[0]):
        out[i] = _check_bits(data[i], enc)


@njit(cache=True, nogil=True, parallel=True)
def _decode_words(data, check, enc, index, pat_data, pat_check, pat_weight, out_data, out_check, status):
    """data/check: uint64[n] received; index: int32[2^(n-k)]; pat_*: uint64[P], pat_weight: int64[P].

    out_data/out_check: uint64[n] decoded word; status: int64[n] = errors corrected (0 .. t) or -1 (detected,
    the word left as received).
    """
    for i in prange(data.shape[0]):
        d = data[i]
        c = check[i]
        s = _check_bits(d, enc) ^ c
        st = 0
        if s != np.uint64(0):
            idx = index[np.int64(s)]
            if idx >= 0:
                d ^= pat_data[idx]
                c ^= pat_check[idx]
                st = pat_weight[idx]
            else:
                st = -1
        out_data[i] = d
        out_check[i] = c
        status[i] = st


@njit(cache=True, nogil=True, parallel=True)
def _flip_protected(codes, bits, m, k, n_check, enc, index, pat_data, p_down, p_up, p_check_down, p_check_up,
                    key, block_words, out):
    """Store the top ``m`` planes of ``codes`` as codewords, flip every stored bit, decode, XOR the residual
    data errors into ``out``.

    codes: uint8|uint16[N]; out: same, holding the read codes of the other planes (modified in place);
    bits, m, k, n_check, block_words: int64 (block_words a multiple of m: a block holds whole weights);
    p_down/p_up: float64[m] rates of protected plane ``bits - m + o``; p_check_*: float64; key: uint64.
    Data bit ``d`` of the layer is plane ``bits - m + d % m`` of weight ``d // m``; word ``w`` holds data bits
    ``w k .. w k + k - 1`` (the last word is shortened further: missing bits are zeros that are not stored).
    Stored bit ``j`` of word ``w`` (``j < k`` data, ``k + i`` check bit ``i``) flips when
    ``uniform(key, w (k + n_check) + j) < rate`` of its stored value.
    """
    total = codes.shape[0] * m
    n_words = (total + k - 1) // k
    n_stored = np.uint64(k + n_check)
    low = bits - m
    n_blocks = (n_words + block_words - 1) // block_words
    for b in prange(n_blocks):
        w_stop = min(n_words, (b + 1) * block_words)
        for w in range(b * block_words, w_stop):
            d0 = w * k
            nd = min(k, total - d0)
            i0 = d0 // m
            o0 = d0 - i0 * m
            data = np.uint64(0)
            i = i0
            o = o0
            for j in range(nd):
                data |= ((np.uint64(codes[i]) >> np.uint64(low + o)) & _ONE) << np.uint64(j)
                o += 1
                if o == m:
                    o = 0
                    i += 1
            chk = _check_bits(data, enc)
            base = np.uint64(w) * n_stored
            err = np.uint64(0)
            o = o0
            for j in range(nd):
                p = p_down[o] if (data >> np.uint64(j)) & _ONE else p_up[o]
                if _uniform(key, base + np.uint64(j)) < p:
                    err |= _ONE << np.uint64(j)
                o += 1
                if o == m:
                    o = 0
            echk = np.uint64(0)
            for j in range(n_check):
                p = p_check_down if (chk >> np.uint64(j)) & _ONE else p_check_up
                if _uniform(key, base + np.uint64(k + j)) < p:
                    echk |= _ONE << np.uint64(j)
            if err == np.uint64(0) and echk == np.uint64(0):
                continue
            s = _check_bits(err, enc) ^ echk
            if s != np.uint64(0):
                idx = index[np.int64(s)]
                # a pattern on a data position the shortened last word does not store: detected
                if idx >= 0 and (nd == k or (pat_data[idx] >> np.uint64(nd)) == np.uint64(0)):
                    err ^= pat_data[idx]
            if err == np.uint64(0):
                continue
            i = i0
            o = o0
            for j in range(nd):
                if (err >> np.uint64(j)) & _ONE:
                    out[i] ^= _ONE << np.uint64(low + o)
                o += 1
                if o == m:
                    o = 0
                    i += 1


@njit(cache=True, nogil=True, inline="always")
def _popcount(x):
    """Number of set bits of a uint64."""
    c = 0
    while x != np.uint64(0):
        x &= x - _ONE
        c += 1
    return c


@njit(cache=True, nogil=True, parallel=True)
def _word_outcomes(n_words, k, n_check, t, enc, index, pat_data, pat_check, p_down, p_up, key, block, counts):
    """Random data words through store, flip, decode; tally per block.

    n_words, k, n_check, t, block: int64; p_down/p_up: float64 (every stored bit); key: uint64.
    Data word w = low k bits of hash64(key, w); stored bit j of word w flips when
    uniform(key, n_words + w n + j) < its rate. counts: int64[n_blocks, 6], per block: words with more
    than t stored errors, words decoded to something else than the stored codeword, data bits wrong after
    decoding, words detected, words miscorrected, sum of squares of data bits wrong per word.
    """
    n = np.uint64(k + n_check)
    mask = _ONE << np.uint64(k) if k < 64 else np.uint64(0)
    mask = mask - _ONE
    n_blocks = counts.shape[0]
    for b in prange(n_blocks):
        c0 = 0
        c1 = 0
        c2 = 0
        c3 = 0
        c4 = 0
        c5 = 0
        for w in range(b * block, min(n_words, (b + 1) * block)):
            data = _hash64(key, np.uint64(w)) & mask
            chk = _check_bits(data, enc)
            base = np.uint64(n_words) + np.uint64(w) * n
            err = np.uint64(0)
            for j in range(k):
                p = p_down if (data >> np.uint64(j)) & _ONE else p_up
                if _uniform(key, base + np.uint64(j)) < p:
                    err |= _ONE << np.uint64(j)
            echk = np.uint64(0)
            for j in range(n_check):
                p = p_down if (chk >> np.uint64(j)) & _ONE else p_up
                if _uniform(key, base + np.uint64(k + j)) < p:
                    echk |= _ONE << np.uint64(j)
            if err == np.uint64(0) and echk == np.uint64(0):
                continue
            if _popcount(err) + _popcount(echk) > t:
                c0 += 1
            s = _check_bits(err, enc) ^ echk
            if s != np.uint64(0):
                idx = index[np.int64(s)]
                if idx >= 0:
                    err ^= pat_data[idx]
                    echk ^= pat_check[idx]
                    if err != np.uint64(0) or echk != np.uint64(0):
                        c4 += 1
                else:
                    c3 += 1
            if err != np.uint64(0) or echk != np.uint64(0):
                c1 += 1
            x = _popcount(err)
            c2 += x
            c5 += x * x
        counts[b, 0] = c0
        counts[b, 1] = c1
        counts[b, 2] = c2
        counts[b, 3] = c3
        counts[b, 4] = c4
        counts[b, 5] = c5
