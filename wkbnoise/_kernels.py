"""Numba kernels of the fault path: flip stored codes, and flip-then-dequantize through a lookup table.

Kernels take exact-dtype C-contiguous arrays and scalars, write into the caller's ``out`` and check
nothing; :mod:`wkbnoise.faults` validates, builds the tables and calls them. Every kernel has a NumPy
twin in ``tests/reference.py`` and matches it bit for bit at any thread count.

Two exact samplers, chosen by :func:`wkbnoise.faults.choose_method` from the rates alone:

- ``mask``: one 64-bit hash per element (per chunk of 8 planes and direction) draws the element's
  whole flip mask from an alias table of the product law ``prod_k p_k^m_k (1-p_k)^(1-m_k)``.
  Asymmetric rates draw a 1->0 mask ``D`` and a 0->1 mask ``U`` and flip ``(D & c) | (U & ~c)``.
  Draw counter = ``element * n_streams + stream``.
- ``skip``: per fixed block of ``block`` elements and per plane, geometric gaps
  ``floor(log(1-u) / log(1-p_max))`` between candidate flips, each accepted with probability
  ``p(bit) / p_max`` (thinning, for asymmetric rates). Block key = ``hash(key, block * B + plane)``,
  draw counters ``2j`` (gap) and ``2j + 1`` (thinning). The cost is ~``B p`` draws per element.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._rng import _hash64, _uniform

_S56 = np.uint64(56)
_S8 = np.uint64(8)
_FF = np.uint64(255)
_M53 = np.uint64((1 << 53) - 1)
_TABLE = 256


@njit(cache=True, nogil=True, inline="always")
def _alias_pick(table, stream, h):
    """One alias draw from the 64-bit hash h: index = top 8 bits, 53-bit uniform = low 53 bits.

    ``table[stream * 256 + i] = (ceil(threshold_i * 2^53) << 8) | alias_i``; comparing the integer
    ``h mod 2^53`` with ``ceil(threshold * 2^53)`` is exactly ``u < threshold`` for ``u = (h mod 2^53) 2^-53``.
    Branch-free select: ``alias ^ ((i ^ alias) * accept)``.
    """
    idx = h >> _S56
    e = table[np.int64(stream) * _TABLE + np.int64(idx)]
    a = e & _FF
    accept = np.uint64((h & _M53) < (e >> _S8))
    return a ^ ((idx ^ a) * accept)


@njit(cache=True, nogil=True, inline="always")
def _mask_of(table, n_dir, key, i, c):
    """Flip mask (uint64) of element i with stored code c (uint64)."""
    n_streams = table.shape[0] // _TABLE
    n_chunks = n_streams // n_dir
    base = np.uint64(i) * np.uint64(n_streams)
    down = np.uint64(0)
    up = np.uint64(0)
    for ch in range(n_chunks):
        shift = np.uint64(8 * ch)
        s = ch * n_dir
        down |= _alias_pick(table, s, _hash64(key, base + np.uint64(s))) << shift
        if n_dir == 2:
            up |= _alias_pick(table, s + 1, _hash64(key, base + np.uint64(s + 1))) << shift
    if n_dir == 1:
        return down
    return (down & c) | (up & ~c)


@njit(cache=True, nogil=True, parallel=True)
def _flip_codes_mask(codes, table, n_dir, key, block, out):
    """codes/out: uint8|uint16[n]; table: uint64[S*256] (packed alias tables); n_dir, block: int64; key: uint64."""
    n = codes.shape[0]
    n_blocks = (n + block - 1) // block
    for b in prange(n_blocks):
        start = b * block
        stop = min(n, start + block)
        for i in range(start, stop):
            c = np.uint64(codes[i])
            out[i] = c ^ _mask_of(table, n_dir, key, i, c)


@njit(cache=True, nogil=True, parallel=True)
def _flip_dequantize_mask(codes, table, n_dir, lut, inner, key, block, out):
    """codes: uint8|uint16[n]; lut: float32[rows, 2^B]; row of element i = i // inner; out: float32[n]."""
    n = codes.shape[0]
    n_blocks = (n + block - 1) // block
    for b in prange(n_blocks):
        start = b * block
        stop = min(n, start + block)
        i = start
        while i < stop:
            row = i // inner
            seg = min(stop, (row + 1) * inner)
            for j in range(i, seg):
                c = np.uint64(codes[j])
                out[j] = lut[row, c ^ _mask_of(table, n_dir, key, j, c)]
            i = seg


@njit(cache=True, nogil=True, inline="always")
def _skip_flips(codes, start, stop, p_max, log_q, acc_down, acc_up, key, b, buf, offset):
    """XOR the flips of block b (elements start..stop-1) into buf[i - offset]; reads bits from codes."""
    n_planes = p_max.shape[0]
    for k in range(n_planes):
        if p_max[k] == 0.0:
            continue
        bkey = _hash64(key, np.uint64(b) * np.uint64(n_planes) + np.uint64(k))
        bit = np.uint64(1) << np.uint64(k)
        pos = start - 1
        j = np.uint64(0)
        while True:
            gap = math.log(1.0 - _uniform(bkey, j + j)) / log_q[k]
            if gap >= np.float64(stop - pos - 1):
                break
            pos = pos + 1 + np.int64(gap)
            acc = acc_down[k] if np.uint64(codes[pos]) & bit else acc_up[k]
            if acc >= 1.0 or _uniform(bkey, j + j + np.uint64(1)) < acc:
                buf[pos - offset] ^= bit
            j += np.uint64(1)


@njit(cache=True, nogil=True, parallel=True)
def _flip_codes_skip(codes, p_max, log_q, acc_down, acc_up, key, block, out):
    """codes/out: uint8|uint16[n]; p_max/log_q/acc_down/acc_up: float64[B]; key: uint64; block: int64."""
    n = codes.shape[0]
    n_blocks = (n + block - 1) // block
    for b in prange(n_blocks):
        start = b * block
        stop = min(n, start + block)
        for i in range(start, stop):
            out[i] = codes[i]
        _skip_flips(codes, start, stop, p_max, log_q, acc_down, acc_up, key, b, out, 0)


@njit(cache=True, nogil=True, parallel=True)
def _flip_dequantize_skip(codes, p_max, log_q, acc_down, acc_up, lut, inner, key, block, out):
    """As _flip_codes_skip, then out[i] = lut[i // inner, flipped code]; out: float32[n]."""
    n = codes.shape[0]
    n_blocks = (n + block - 1) // block
    for b in prange(n_blocks):
        start = b * block
        stop = min(n, start + block)
        buf = codes[start:stop].copy()
        _skip_flips(codes, start, stop, p_max, log_q, acc_down, acc_up, key, b, buf, start)
        i = start
        while i < stop:
            row = i // inner
            seg = min(stop, (row + 1) * inner)
            for j in range(i, seg):
                out[j] = lut[row, buf[j - start]]
            i = seg
