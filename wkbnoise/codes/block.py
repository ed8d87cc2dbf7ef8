"""The real codes: tables loaded from ``tables.safetensors``, encoding and syndrome-table decoding of words.

========================  =====  ====  ===  ===============================================================
name                      n      k     t    construction (binary, systematic, shortened)
========================  =====  ====  ===  ===============================================================
``secded-72-64``          72     64    1    Hamming SECDED: BCH(127, 119) with roots 1, a, a^2 over GF(2^7)
``secded-39-32``          39     32    1    Hamming SECDED: BCH(63, 56) with roots 1, a, a^2 over GF(2^6)
``bch-64-t2``             78     64    2    narrow-sense BCH(127, 113) over GF(2^7), shortened by 49
``bch-64-t3``             85     64    3    narrow-sense BCH(127, 106) over GF(2^7), shortened by 42
========================  =====  ====  ===  ===============================================================

The SECDED codes are the even-weight subcodes of the cyclic Hamming codes (generator ``(x + 1) m_1(x)``,
minimum distance 4): one error is corrected, two are detected. The BCH codes have designed distance
``2 t + 1``. A decoder corrects every error pattern of weight ``<= t``; a word whose syndrome belongs to
no such pattern is *detected* and left as received; a word with more than ``t`` errors whose syndrome
belongs to a pattern of weight ``<= t`` is *miscorrected* (the decoder adds that pattern). This is the
bounded-distance decoding that ``galois``' Berlekamp-Massey decoder performs on these codes, which the
tests check word by word.

Examples
--------
>>> import numpy as np
>>> code = real_code("secded-72-64")
>>> data = np.array([0x0123456789ABCDEF], dtype=np.uint64)
>>> check = code.encode(data)
>>> out, chk, status = code.decode(data ^ np.uint64(1 << 5), check)
>>> bool(out[0] == data[0]), int(status[0])
(True, 1)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from itertools import combinations
from pathlib import Path

import numpy as np

from ..errors import InputError
from . import _kernels

__all__ = ["BlockCode", "real_code", "REAL_CODES"]

TABLE_FILE = Path(__file__).with_name("tables.safetensors")
REAL_CODES = ("secded-72-64", "secded-39-32", "bch-64-t2", "bch-64-t3")


@dataclass(frozen=True, eq=False)
class BlockCode:
    """A binary systematic ``(n, k)`` code correcting ``t`` errors, with its syndrome-table decoder.

    Attributes
    ----------
    name : str
    n, k, t : int
        Stored bits, data bits per word (``k <= 64``, ``n - k <= 64``) and errors corrected.
    parity : ndarray of uint8, shape (k, n - k)
        ``P`` of ``G = [I | P]``: check bit ``i`` = XOR of the data bits ``j`` with ``P[j, i] = 1``.
    enc : ndarray of uint64, shape (8, 256)
        Check bits of each byte value at each data byte (the encoder's table).
    index : ndarray of int32, shape (2^(n-k),)
        Syndrome -> pattern id, or -1.
    pat_data, pat_check : ndarray of uint64, shape (P,)
        The error patterns of weight 1..t (data and check parts); ``pat_weight`` int64[P] their weights.
    info : dict
        Construction facts (full-length code, shortening, generator polynomial).
    """

    name: str
    n: int
    k: int
    t: int
    parity: np.ndarray
    enc: np.ndarray
    index: np.ndarray
    pat_data: np.ndarray
    pat_check: np.ndarray
    pat_weight: np.ndarray
    info: dict

    @property
    def n_check(self) -> int:
        """Check bits per word, ``n - k``."""
        return self.n - self.k

    def encode(self, data: np.ndarray) -> np.ndarray:
        """Check bits (uint64[N], bit ``i`` = check bit ``i``) of data words (uint64[N], bit ``j`` = data bit j)."""
        data = self._words(data, self.k, "data")
        out = np.empty_like(data)
        _kernels._encode_words(data, self.enc, out)
        return out

    def decode(self, data: np.ndarray, check: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Decode received words.

        Parameters
        ----------
        data, check : ndarray of uint64, shape (N,)
            Received data and check bits.

        Returns
        -------
        data, check : ndarray of uint64
            The decoded words (as received when detected).
        status : ndarray of int64
            Errors corrected per word (0..t), or -1 when the word is detected as uncorrectable.
        """
        data = self._words(data, self.k, "data")
        check = self._words(check, self.n_check, "check")
        if data.shape != check.shape:
            raise InputError(f"data {data.shape} and check {check.shape} must have one entry per word each.")
        out_d, out_c = np.empty_like(data), np.empty_like(check)
        status = np.empty(data.shape, dtype=np.int64)
        _kernels._decode_words(data, check, self.enc, self.index, self.pat_data, self.pat_check,
                               self.pat_weight, out_d, out_c, status)
        return out_d, out_c, status

    @staticmethod
    def _words(x, width: int, what: str) -> np.ndarray:
        if not isinstance(x, np.ndarray) or x.dtype != np.uint64 or x.ndim != 1:
            raise InputError(f"{what} must be a 1-D uint64 array of words (bit j = bit j of the word).")
        if width < 64 and x.size and int(x.max()) >> width:
            raise InputError(f"{what} words have bits set at or above {width}; this code's {what} part has "
                             f"{width} bits.")
        return np.ascontiguousarray(x)


def _read_tables() -> tuple[dict, dict]:
    from safetensors import safe_open
    from safetensors.numpy import load_file

    with safe_open(str(TABLE_FILE), framework="np") as f:
        meta = json.loads(f.metadata()["codes"])
    return load_file(str(TABLE_FILE)), meta


@cache
def real_code(name: str) -> BlockCode:
    """The real code called ``name`` (one of :data:`REAL_CODES`), its decoder tables built once per process.

    Raises
    ------
    InputError
        For a name without a committed table (``ideal`` and other ``bch-K-tT`` are analytic only).
    """
    if name not in REAL_CODES:
        raise InputError(f"code={name!r} has no decoder table: real codes are {', '.join(REAL_CODES)} "
                         "(use 'ideal' for a protection that never errs).")
    tensors, meta = _read_tables()
    info = meta[name]
    parity = np.ascontiguousarray(tensors[f"{name}/parity"], dtype=np.uint8)
    k, r, t = int(info["k"]), int(info["n"]) - int(info["k"]), int(info["t"])
    weights = np.uint64(1) << np.arange(r, dtype=np.uint64)
    rows = (parity.astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)       # check bits of data bit j
    rows = np.concatenate([rows, np.zeros(64 - k, dtype=np.uint64)])
    enc = np.zeros((8, 256), dtype=np.uint64)
    values = np.arange(256)
    for j in range(8):
        for b in range(8):
            enc[j, (values >> b) & 1 == 1] ^= rows[8 * j + b]
    single = np.concatenate([rows[:k], weights])               # syndrome of an error on stored position p
    pats, synd = [], []
    for w in range(1, t + 1):
        c = np.array(list(combinations(range(k + r), w)), dtype=np.int64)
        pats.append(np.pad(c, ((0, 0), (0, t - w)), constant_values=-1))
        synd.append(np.bitwise_xor.reduce(single[c], axis=1))
    pats = np.concatenate(pats)
    synd = np.concatenate(synd)
    if np.unique(synd).size != synd.size or np.any(synd == 0):
        raise AssertionError(f"{name}: two error patterns of weight <= {t} share a syndrome")
    index = np.full(1 << r, -1, dtype=np.int32)
    index[synd.astype(np.int64)] = np.arange(synd.size, dtype=np.int32)
    one = np.uint64(1)
    pd = np.zeros(len(pats), dtype=np.uint64)
    pc = np.zeros(len(pats), dtype=np.uint64)
    for col in range(t):
        p = pats[:, col]
        d, c = (p >= 0) & (p < k), p >= k
        pd[d] |= one << p[d].astype(np.uint64)
        pc[c] |= one << (p[c] - k).astype(np.uint64)
    for a in (parity, enc, index, pd, pc):
        a.setflags(write=False)
    weight = (pats >= 0).sum(axis=1).astype(np.int64)
    return BlockCode(name, k + r, k, t, parity, enc, index, pd, pc, weight, info)
