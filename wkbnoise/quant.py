"""Symmetric INT-B quantization and the stored bit patterns (docs/theory.md section 1).

A weight tensor ``W`` is stored as unsigned integer *codes* (``uint8`` for B <= 8, ``uint16`` for
B = 9..16) holding the B-bit pattern of ``q = clip(round(W / s), -q_max, q_max)``,
``q_max = 2^(B-1) - 1``, ``s = ||W||_inf / q_max`` (per tensor, or per output channel = axis 0).
Two encodings of ``q``:

- ``"twos"`` (default): two's complement, ``q = sum_k c_k b_k`` with ``c_k = 2^k`` (k < B-1) and
  ``c_(B-1) = -2^(B-1)``; code ``2^(B-1)`` (only reachable by a fault) reads as ``-2^(B-1)``.
- ``"signmag"``: sign-magnitude, bit B-1 is the sign and bits 0..B-2 the magnitude; code ``2^(B-1)``
  (negative zero, only reachable by a fault) reads as 0.

Examples
--------
>>> import numpy as np
>>> qt = quantize(np.array([0.5, -1.0, 0.25], dtype=np.float32), bits=8)
>>> qt.values.tolist(), qt.codes.tolist()
([64, -127, 32], [64, 129, 32])
>>> [round(float(x), 3) for x in qt.dequantize()]
[0.504, -1.0, 0.252]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .rates import check_bits
from .theory import check_encoding, code_values

__all__ = ["QuantizedTensor", "quantize", "code_dtype", "codes_to_values", "values_to_codes", "code_histogram"]


def code_dtype(bits: int) -> np.dtype:
    """The unsigned dtype that stores a B-bit code: ``uint8`` for B <= 8, ``uint16`` for 9..16."""
    bits = check_bits(bits)
    return np.dtype(np.uint8) if bits <= 8 else np.dtype(np.uint16)


def values_to_codes(q: np.ndarray, bits: int, encoding: str = "twos") -> np.ndarray:
    """B-bit codes of the signed integers ``q`` (each in ``-q_max..q_max``), as ``code_dtype(bits)``."""
    bits = check_bits(bits)
    encoding = check_encoding(encoding)
    q = np.asarray(q)
    if not np.issubdtype(q.dtype, np.integer):
        raise InputError(f"q has dtype {q.dtype}: give signed integers (round and clip first, or use quantize()).")
    q_max = 2 ** (bits - 1) - 1
    if q.size and (int(q.min()) < -q_max or int(q.max()) > q_max):
        raise InputError(f"q spans {int(q.min())}..{int(q.max())}: B={bits} symmetric codes hold -{q_max}..{q_max}.")
    q64 = q.astype(np.int64)
    if encoding == "twos":
        codes = q64 & (2**bits - 1)
    else:
        codes = np.abs(q64) | (np.where(q64 < 0, 1, 0) << (bits - 1))
    return codes.astype(code_dtype(bits))


def codes_to_values(codes: np.ndarray, bits: int, encoding: str = "twos") -> np.ndarray:
    """Signed integer value of each stored code (int32), including codes only a fault can produce."""
    bits = check_bits(bits)
    codes = np.asarray(codes)
    if codes.dtype != code_dtype(bits):
        raise InputError(f"codes have dtype {codes.dtype}; B={bits} codes are {code_dtype(bits)}.")
    table = code_values(bits, encoding).astype(np.int32)
    return table[codes]


@dataclass(frozen=True, eq=False)
class QuantizedTensor:
    """A weight tensor stored as B-bit codes plus a float32 scale.

    Attributes
    ----------
    codes : ndarray of uint8 (B <= 8) or uint16 (B > 8)
        The stored bit patterns, C-contiguous, in the weight's shape.
    scale : ndarray of float32, shape () or (C_out,)
        Weight units per code step (per tensor, or per output channel along axis 0).
    bits : int
        B, 2..16.
    encoding : str
        ``"twos"`` or ``"signmag"``.
    """

    codes: np.ndarray
    scale: np.ndarray
    bits: int
    encoding: str = "twos"

    @property
    def values(self) -> np.ndarray:
        """Signed integer values ``q`` (int8 zero-copy view for B = 8 two's complement, else int32)."""
        if self.encoding == "twos" and self.bits == 8:
            return self.codes.view(np.int8)
        if self.encoding == "twos" and self.bits == 16:
            return self.codes.view(np.int16)
        return codes_to_values(self.codes, self.bits, self.encoding)

    def scale_broadcast(self) -> np.ndarray:
        """The scale shaped to broadcast against ``codes`` (float32)."""
        if self.scale.ndim == 0:
            return self.scale
        return self.scale.reshape((-1,) + (1,) * (self.codes.ndim - 1))

    def dequantize(self) -> np.ndarray:
        """The clean float32 weights ``q * s``."""
        return (self.values.astype(np.float32) * self.scale_broadcast()).astype(np.float32)


def quantize(w: np.ndarray, bits: int = 8, *, encoding: str = "twos", per_channel: bool = False) -> QuantizedTensor:
    """Quantize a float weight tensor to symmetric INT-B codes.

    Parameters
    ----------
    w : ndarray of float32 or float64
        Weights [weight units], finite. Any shape; ``per_channel`` scales along axis 0.
    bits : int, default 8
        B, 2..16.
    encoding : {"twos", "signmag"}
        How the signed integer is laid out in the B stored bits.
    per_channel : bool
        One scale per output channel (axis 0) instead of one per tensor.

    Returns
    -------
    QuantizedTensor
        ``scale = max|w| / q_max`` (float32; 0 for an all-zero tensor or channel, whose codes are then 0),
        ``q = clip(rint(w / scale), -q_max, q_max)``.

    Raises
    ------
    InputError
        Non-float or non-finite weights, B outside 2..16, an unknown encoding, ``per_channel`` on a 0-d array.
    """
    bits = check_bits(bits)
    encoding = check_encoding(encoding)
    w = np.asarray(w)
    if w.dtype not in (np.float32, np.float64):
        raise InputError(f"w has dtype {w.dtype}: quantize() takes float32 or float64 weights; use w.astype(np.float32).")
    if not np.all(np.isfinite(w)):
        raise InputError("w contains NaN or inf: quantize() needs finite weights.")
    if not isinstance(per_channel, bool):
        raise InputError(f"per_channel={per_channel!r} must be True or False.")
    q_max = 2 ** (bits - 1) - 1
    if per_channel:
        if w.ndim == 0 or w.shape[0] == 0:
            raise InputError(f"per_channel=True needs at least one output channel on axis 0, got shape {w.shape}.")
        amax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1) if w.size else np.zeros(w.shape[0])
        scale = (amax.astype(np.float64) / q_max).astype(np.float32)
        s_b = scale.reshape((-1,) + (1,) * (w.ndim - 1)).astype(np.float64)
    else:
        amax = float(np.abs(w).max()) if w.size else 0.0
        scale = np.array(amax / q_max, dtype=np.float32)
        s_b = np.float64(scale)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(s_b > 0, w.astype(np.float64) / np.where(s_b > 0, s_b, 1.0), 0.0)
    q = np.clip(np.rint(ratio), -q_max, q_max).astype(np.int64)
    codes = np.ascontiguousarray(values_to_codes(q, bits, encoding))
    return QuantizedTensor(codes=codes, scale=scale, bits=bits, encoding=encoding)


def code_histogram(qt: QuantizedTensor) -> np.ndarray:
    """The clean code histogram ``pi_l`` of a layer: float64[2^B], relative frequencies summing to 1.

    This is the prior the ``bayes`` and ``bayes-gain`` lookup tables need (docs/theory.md section 4).
    """
    if not isinstance(qt, QuantizedTensor):
        raise InputError(f"code_histogram() takes a QuantizedTensor, not {type(qt).__name__}; use quantize(w) first.")
    counts = np.bincount(qt.codes.ravel(), minlength=2**qt.bits).astype(np.float64)
    total = counts.sum()
    if total == 0:
        raise InputError("code_histogram() of an empty tensor: there are no codes to count.")
    return counts / total

