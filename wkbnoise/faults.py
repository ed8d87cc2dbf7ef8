"""Flip stored codes with per-plane rates, and dequantize the result through a lookup table, in one pass.

Each bit of each stored code flips independently: a stored 1 with ``rates.p_down[k]``, a stored 0
with ``rates.p_up[k]`` (docs/theory.md section 2); a protected plane (both rates 0) never flips.
The draws are pure functions of ``key`` and of where they are (element and plane, or a fixed block of
``BLOCK`` elements for the geometric-skip sampler), so a result is bit-identical for any thread count
and equal to the NumPy twin in ``tests/reference.py``.

Two exact samplers (see :mod:`wkbnoise._kernels`); :func:`choose_method` picks one from the rates alone,
so the same (codes, rates, key) always give the same result:

- ``"skip"`` (geometric skipping per block and plane) when the expected number of flip candidates per
  element, ``sum_k max(pd_k, pu_k)``, is at most ``SKIP_MAX_EVENTS``;
- ``"mask"`` (one alias draw of the whole flip mask per element) above that.

Examples
--------
>>> import numpy as np
>>> from wkbnoise import FlipRates
>>> from wkbnoise.quant import quantize
>>> from wkbnoise.correction import build_lut
>>> qt = quantize(np.linspace(-1, 1, 1000, dtype=np.float32))
>>> rates = FlipRates.symmetric(0.01, bits=8)
>>> lut = build_lut(rates, qt.scale, method="per-plane")
>>> w = flip_dequantize(qt.codes, rates, lut, key=derive_keys(0, (0,), 1)[0])
>>> w.dtype.name, w.shape
('float32', (1000,))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _kernels
from ._rng import ALIAS_SIZE, alias_table, check_key, derive_keys
from .errors import InputError
from .rates import FlipRates

__all__ = ["flip_codes", "flip_dequantize", "choose_method", "derive_keys", "BLOCK", "SKIP_MAX_EVENTS",
           "METHODS", "mask_tables", "skip_tables", "sampler_tables", "SamplerTables"]

BLOCK = 16384                 # elements per block of the skip sampler (part of the result's definition)
SKIP_MAX_EVENTS = 0.1         # skip sampler when sum_k max(pd_k, pu_k) <= this (crossover measured with bench/flips.py)
METHODS = ("auto", "skip", "mask")


def choose_method(rates: FlipRates) -> str:
    """The sampler that ``method="auto"`` uses for these rates: ``"skip"`` or ``"mask"``."""
    r = _check_rates(rates)
    return "skip" if float(np.maximum(r.p_down, r.p_up).sum()) <= SKIP_MAX_EVENTS else "mask"


def mask_tables(rates: FlipRates) -> tuple[np.ndarray, int]:
    """Packed alias tables of the ``mask`` sampler: uint64[S*256] and n_dir (1 or 2).

    Entry ``s * 256 + i`` is ``(ceil(threshold_i * 2^53) << 8) | alias_i`` (see :func:`wkbnoise._rng.alias_table`).

    Stream ``s = chunk * n_dir + direction`` covers planes ``8 chunk .. 8 chunk + 7``; direction 0 draws
    the 1->0 mask (rates ``p_down``), direction 1 the 0->1 mask (``p_up``); symmetric rates use one
    direction for both.
    """
    r = _check_rates(rates)
    directions = [r.p_down] if r.is_symmetric else [r.p_down, r.p_up]
    n_chunks = (r.bits + 7) // 8
    thresholds, aliases = [], []
    for ch in range(n_chunks):
        planes = range(8 * ch, min(r.bits, 8 * ch + 8))
        for rate in directions:
            law = np.zeros(ALIAS_SIZE)
            law[0] = 1.0
            for j, k in enumerate(planes):      # product law over the chunk's planes, built plane by plane
                new = law * (1.0 - rate[k])
                idx = np.arange(ALIAS_SIZE)
                hit = (idx >> j) & 1 == 1
                new[hit] = law[idx[hit] ^ (1 << j)] * rate[k]
                law = new
            t, a = alias_table(law)
            thresholds.append(t)
            aliases.append(a)
    t = np.ceil(np.concatenate(thresholds) * 2.0**53).astype(np.uint64)
    return (t << np.uint64(8)) | np.concatenate(aliases).astype(np.uint64), len(directions)


def skip_tables(rates: FlipRates) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-plane inputs of the ``skip`` sampler: p_max, log(1 - p_max), p_down/p_max, p_up/p_max (float64[B])."""
    r = _check_rates(rates)
    p_max = np.maximum(r.p_down, r.p_up)
    safe = np.where(p_max > 0, p_max, 1.0)
    log_q = np.where(p_max > 0, np.log1p(-p_max), -1.0)
    return p_max, log_q, np.where(p_max > 0, r.p_down / safe, 0.0), np.where(p_max > 0, r.p_up / safe, 0.0)


@dataclass(frozen=True)
class SamplerTables:
    """The sampler chosen for one :class:`~wkbnoise.FlipRates` and its tables (:func:`sampler_tables`).

    Attributes
    ----------
    rates : FlipRates
        The rates the tables were built for.
    method : {"skip", "mask"}
        The sampler.
    arrays : tuple of ndarray
        ``mask_tables(rates)`` (table, n_dir) or ``skip_tables(rates)`` (p_max, log_q, acc_down, acc_up).
    """

    rates: FlipRates
    method: str
    arrays: tuple


def sampler_tables(rates: FlipRates, method: str = "auto") -> SamplerTables:
    """Build the sampler's tables once, for many :func:`flip_dequantize` calls with the same rates.

    A campaign point flips the same layer with the same rates in every trial; building the ``mask``
    sampler's alias tables costs about 0.3 ms a call, which is most of a small layer's flip time.

    Parameters
    ----------
    rates : FlipRates
        Per-plane flip probabilities.
    method : {"auto", "skip", "mask"}
        Sampler; ``"auto"`` uses :func:`choose_method`.

    Returns
    -------
    SamplerTables
        Pass it as ``tables=`` to :func:`flip_codes` or :func:`flip_dequantize` with the same rates.
    """
    r = _check_rates(rates)
    if method not in METHODS:
        raise InputError(f"method={method!r} must be one of {', '.join(METHODS)}.")
    if method == "auto":
        method = choose_method(r)
    return _build_tables(r, str(method))


def _build_tables(r: FlipRates, method: str) -> SamplerTables:
    return SamplerTables(r, method, mask_tables(r) if method == "mask" else skip_tables(r))


def _tables_for(r: FlipRates, method: str, tables: object) -> SamplerTables:
    """``tables`` checked against the rates and method of the call, or built now when None."""
    if tables is None:
        return _build_tables(r, method)
    same = tables.rates is r or (tables.rates.bits == r.bits and np.array_equal(tables.rates.p_down, r.p_down)
                                 and np.array_equal(tables.rates.p_up, r.p_up))
    if not same:
        raise InputError("tables were built for other rates; build them with sampler_tables(rates) for these rates.")
    return tables


def flip_codes(codes: np.ndarray, rates: FlipRates, key: int, out: np.ndarray | None = None, *,
               method: str = "auto", tables: SamplerTables | None = None) -> np.ndarray:
    """Flip every bit of every stored code independently.

    Parameters
    ----------
    codes : ndarray of uint8 (B <= 8) or uint16 (B = 9..16), C-contiguous
        Stored B-bit patterns (``QuantizedTensor.codes``); no bit at or above B may be set.
    rates : FlipRates
        ``p_down[k]`` = P(1 -> 0), ``p_up[k]`` = P(0 -> 1) per bit of plane k [dimensionless].
    key : int
        uint64 key of this tensor and trial (``derive_keys``).
    out : ndarray, optional
        Destination, same dtype and shape as ``codes``, C-contiguous; may be ``codes`` itself (in place).
    method : {"auto", "skip", "mask"}
        Sampler; ``"auto"`` uses :func:`choose_method`. Each is exact; they draw different samples.
    tables : SamplerTables, optional
        ``sampler_tables(rates)`` built once for many calls with these rates (the same result, faster).

    Returns
    -------
    ndarray
        The read codes (``out``).

    Raises
    ------
    InputError
        Wrong dtype for B, non-contiguous arrays, bits set at or above B, a bad key, out of the wrong
        shape or dtype.
    """
    r, flat, t = _check_common(codes, rates, key, method, tables)
    if out is None:
        out = np.empty_like(codes)
    _check_out(out, codes.shape, codes.dtype, "codes")
    flat_out = out.reshape(-1)
    k = np.uint64(int(key))
    if t.method == "mask":
        table, n_dir = t.arrays
        _kernels._flip_codes_mask(flat, table, np.int64(n_dir), k, np.int64(BLOCK), flat_out)
    else:
        p_max, log_q, acc_d, acc_u = t.arrays
        _kernels._flip_codes_skip(flat, p_max, log_q, acc_d, acc_u, k, np.int64(BLOCK), flat_out)
    return out


def flip_dequantize(codes: np.ndarray, rates: FlipRates, lut: np.ndarray, key: int,
                    out: np.ndarray | None = None, *, method: str = "auto",
                    tables: SamplerTables | None = None) -> np.ndarray:
    """Flip the stored codes and read them through a lookup table, in one pass: ``out = lut[flipped codes]``.

    Parameters
    ----------
    codes : ndarray of uint8 (B <= 8) or uint16 (B = 9..16), C-contiguous
        Stored B-bit patterns.
    rates : FlipRates
        Per-plane flip probabilities (see :func:`flip_codes`).
    lut : ndarray of float32, shape (2^B,) or (C, 2^B), C-contiguous
        Corrected weight per read pattern, scale included [weight units] (:func:`wkbnoise.correction.build_lut`).
        A 2-D table has one row per output channel (axis 0 of ``codes``).
    key : int
        uint64 key of this tensor and trial.
    out : ndarray of float32, optional
        Destination in ``codes``' shape, C-contiguous (e.g. a preallocated weight buffer). Nothing
        else of full size is allocated.
    method : {"auto", "skip", "mask"}
        Sampler (see :func:`flip_codes`).
    tables : SamplerTables, optional
        ``sampler_tables(rates)`` built once for many calls with these rates (the same result, faster).

    Returns
    -------
    ndarray of float32
        The faulty, corrected weights (``out``).
    """
    r, flat, t = _check_common(codes, rates, key, method, tables)
    lut = _check_lut(lut, r.bits, codes)
    rows = lut.shape[0]
    inner = max(1, flat.size // rows)
    if out is None:
        out = np.empty(codes.shape, dtype=np.float32)
    _check_out(out, codes.shape, np.dtype(np.float32), "weights")
    flat_out = out.reshape(-1)
    k = np.uint64(int(key))
    if t.method == "mask":
        table, n_dir = t.arrays
        _kernels._flip_dequantize_mask(flat, table, np.int64(n_dir), lut, np.int64(inner), k, np.int64(BLOCK),
                                       flat_out)
    else:
        p_max, log_q, acc_d, acc_u = t.arrays
        _kernels._flip_dequantize_skip(flat, p_max, log_q, acc_d, acc_u, lut, np.int64(inner), k,
                                       np.int64(BLOCK), flat_out)
    return out


# -- validation ------------------------------------------------------------------------------------------------
def _check_rates(rates: object) -> FlipRates:
    if not isinstance(rates, FlipRates):
        raise InputError(f"rates must be a FlipRates (e.g. FlipRates.symmetric(0.01, bits=8)), not {type(rates).__name__}.")
    return rates


def _check_common(codes: object, rates: object, key: object, method: object,
                  tables: object) -> tuple[FlipRates, np.ndarray, SamplerTables]:
    r = _check_rates(rates)
    if method not in METHODS:
        raise InputError(f"method={method!r} must be one of {', '.join(METHODS)}.")
    if tables is not None:
        if not isinstance(tables, SamplerTables):
            raise InputError(f"tables must come from sampler_tables(rates), not {type(tables).__name__}.")
        if method not in ("auto", tables.method):
            raise InputError(f"method={method!r} but the tables are for the {tables.method!r} sampler; "
                             "leave method='auto' or build the tables with the same method.")
        method = tables.method
    if not isinstance(codes, np.ndarray):
        raise InputError(f"codes must be a numpy array of stored codes, not {type(codes).__name__}.")
    want = np.dtype(np.uint8) if r.bits <= 8 else np.dtype(np.uint16)
    if codes.dtype != want:
        raise InputError(f"codes have dtype {codes.dtype} but B={r.bits} codes are stored as {want}; use the codes of "
                         f"quantize(w, bits={r.bits}) (no lossy cast is made here).")
    if not codes.flags.c_contiguous:
        raise InputError("codes are not C-contiguous; pass np.ascontiguousarray(codes).")
    flat = codes.reshape(-1)
    if r.bits not in (8, 16) and flat.size and int(flat.max()) >> r.bits:
        raise InputError(f"codes hold values up to {int(flat.max())}, above the {r.bits}-bit range "
                         f"0..{2**r.bits - 1}: quantize with bits={r.bits} or use rates for the right B.")
    check_key(key)
    if method == "auto":
        method = choose_method(r)
    return r, flat, _tables_for(r, str(method), tables)


def _check_out(out: object, shape: tuple, dtype: np.dtype, what: str) -> None:
    if not isinstance(out, np.ndarray) or out.dtype != dtype or out.shape != shape:
        got = f"{out.dtype} {out.shape}" if isinstance(out, np.ndarray) else type(out).__name__
        raise InputError(f"out must be a {dtype} array of shape {shape} (the {what}), got {got}.")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise InputError("out must be a writeable C-contiguous array; allocate it with np.empty(shape, dtype).")


def _check_lut(lut: object, bits: int, codes: np.ndarray) -> np.ndarray:
    if not isinstance(lut, np.ndarray) or lut.dtype != np.float32:
        got = lut.dtype if isinstance(lut, np.ndarray) else type(lut).__name__
        raise InputError(f"lut must be a float32 array of 2^B = {2**bits} entries (build_lut(...)), got {got}.")
    if not lut.flags.c_contiguous:
        raise InputError("lut is not C-contiguous; pass np.ascontiguousarray(lut).")
    if lut.ndim == 1 and lut.shape[0] == 2**bits:
        return lut.reshape(1, -1)
    if lut.ndim == 2 and lut.shape[1] == 2**bits and codes.ndim >= 1 and lut.shape[0] == codes.shape[0]:
        return lut
    raise InputError(f"lut has shape {lut.shape}: expected ({2**bits},) or (C, {2**bits}) with C = codes.shape[0] "
                     f"= {codes.shape[0] if codes.ndim else None} (one row per output channel).")
