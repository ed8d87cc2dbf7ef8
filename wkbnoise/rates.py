"""Per-bit-plane flip rates: the object that the physics produces and the fault model consumes.

Plane ``k`` (0 = LSB, ``B - 1`` = MSB/sign) of a stored code flips ``1 -> 0`` with probability
``p_down[k]`` and ``0 -> 1`` with probability ``p_up[k]``, independently of every other bit
(docs/theory.md section 2). A plane protected by an ideal ECC has ``p_down = p_up = 0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError, PhysicsDomainError

__all__ = ["FlipRates", "MIN_BITS", "MAX_BITS"]

MIN_BITS = 2
MAX_BITS = 16


def check_bits(bits: object, name: str = "bits") -> int:
    """Return ``bits`` as an int after checking ``MIN_BITS <= bits <= MAX_BITS``."""
    if isinstance(bits, bool) or not isinstance(bits, int | np.integer) or not MIN_BITS <= bits <= MAX_BITS:
        raise InputError(f"{name}={bits!r} must be an integer in {MIN_BITS}..{MAX_BITS} (bits per stored weight).")
    return int(bits)


def _as_rate_vector(value: object, name: str) -> np.ndarray:
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}={value!r} must be a sequence of probabilities per bit plane.") from exc
    if arr.ndim != 1:
        raise InputError(f"{name} must be one-dimensional (one rate per bit plane), got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0.0) or np.any(arr >= 1.0):
        raise InputError(f"{name}={arr.tolist()} must hold probabilities in [0, 1) for every bit plane.")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class FlipRates:
    """Independent per-plane bit-flip probabilities of one stored tensor.

    Parameters
    ----------
    p_down : array_like of float, shape (B,)
        P(stored 1 reads as 0) for plane k = 0 (LSB) .. B-1 (MSB) [dimensionless, per bit, in [0, 1)].
    p_up : array_like of float, shape (B,)
        P(stored 0 reads as 1) per plane [dimensionless, per bit, in [0, 1)].

    Raises
    ------
    InputError
        If a rate is outside [0, 1), the shapes differ, or B is outside 2..16.
    PhysicsDomainError
        If ``a_k = 1 - p_up[k] - p_down[k] <= 0`` on some plane: the bit then carries no information
        (or is inverted), and no correction can undo it.

    Examples
    --------
    >>> r = FlipRates.symmetric(0.1, bits=8)
    >>> r.bits, float(r.a[0])
    (8, 0.8)
    >>> r.protect_top(2).p_down.tolist()[-3:]
    [0.1, 0.0, 0.0]
    """

    p_down: np.ndarray
    p_up: np.ndarray

    def __post_init__(self) -> None:
        p_down = _as_rate_vector(self.p_down, "p_down")
        p_up = _as_rate_vector(self.p_up, "p_up")
        if p_down.shape != p_up.shape:
            raise InputError(f"p_down has {p_down.size} planes but p_up has {p_up.size}: give one rate per plane to both.")
        check_bits(int(p_down.size), "number of planes")
        a = 1.0 - p_up - p_down
        if np.any(a <= 0.0):
            k = int(np.argmax(a <= 0.0))
            raise PhysicsDomainError(
                f"plane {k}: p_down={p_down[k]:g} and p_up={p_up[k]:g} give a = 1 - p_up - p_down = {a[k]:g} <= 0: "
                "the stored bit carries no information. Use rates with p_up + p_down < 1 (p_flip < 0.5 when symmetric)."
            )
        object.__setattr__(self, "p_down", p_down)
        object.__setattr__(self, "p_up", p_up)

    # -- constructors -------------------------------------------------------------------------------------
    @classmethod
    def symmetric(cls, p_flip: float, bits: int = 8) -> FlipRates:
        """Binary symmetric channel: every plane flips either way with ``p_flip`` [per bit]."""
        bits = check_bits(bits)
        p = _check_scalar_rate(p_flip, "p_flip")
        if p >= 0.5:
            raise PhysicsDomainError(
                f"p_flip={p:g} gives a = 1 - 2p = {1 - 2 * p:g} <= 0: the stored bits carry no information. "
                "Use p_flip < 0.5."
            )
        return cls(np.full(bits, p), np.full(bits, p))

    @classmethod
    def uniform(cls, p_down: float, p_up: float, bits: int = 8) -> FlipRates:
        """The same asymmetric pair on every plane: ``p_down`` (1 -> 0) and ``p_up`` (0 -> 1) [per bit]."""
        bits = check_bits(bits)
        pd = _check_scalar_rate(p_down, "p_down")
        pu = _check_scalar_rate(p_up, "p_up")
        return cls(np.full(bits, pd), np.full(bits, pu))

    # -- views ----------------------------------------------------------------------------------------------
    @property
    def bits(self) -> int:
        """Number of planes B."""
        return int(self.p_down.size)

    @property
    def a(self) -> np.ndarray:
        """``a_k = 1 - p_up[k] - p_down[k]``, the per-plane signal gain, float64[B]."""
        return 1.0 - self.p_up - self.p_down

    @property
    def is_symmetric(self) -> bool:
        """True when ``p_down == p_up`` on every plane."""
        return bool(np.array_equal(self.p_down, self.p_up))

    @property
    def is_uniform(self) -> bool:
        """True when every unprotected plane has the same pair of rates (and protected planes are zero)."""
        live = (self.p_down > 0) | (self.p_up > 0)
        if not np.any(live):
            return True
        return bool(np.all(self.p_down[live] == self.p_down[live][0]) and np.all(self.p_up[live] == self.p_up[live][0]))

    def protected_planes(self) -> int:
        """Number of top planes (from the MSB down) whose rates are both zero."""
        m = 0
        for k in range(self.bits - 1, -1, -1):
            if self.p_down[k] == 0.0 and self.p_up[k] == 0.0:
                m += 1
            else:
                break
        return m

    def protect_top(self, m: int) -> FlipRates:
        """Rates with the top ``m`` planes protected by an ideal ECC (their rates set to 0)."""
        if isinstance(m, bool) or not isinstance(m, int | np.integer) or not 0 <= m <= self.bits:
            raise InputError(f"m={m!r} protected planes must be an integer in 0..{self.bits}.")
        pd = self.p_down.copy()
        pu = self.p_up.copy()
        if m:
            pd[self.bits - int(m) :] = 0.0
            pu[self.bits - int(m) :] = 0.0
        return FlipRates(pd, pu)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FlipRates):
            return NotImplemented
        return bool(np.array_equal(self.p_down, other.p_down) and np.array_equal(self.p_up, other.p_up))

    def __hash__(self) -> int:
        return hash((self.p_down.tobytes(), self.p_up.tobytes()))

    def __repr__(self) -> str:
        if self.is_symmetric and self.is_uniform and self.protected_planes() == 0:
            return f"FlipRates.symmetric({float(self.p_down[0])!r}, bits={self.bits})"
        return f"FlipRates(p_down={self.p_down.tolist()}, p_up={self.p_up.tolist()})"

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-ready form: ``{"p_down": [...], "p_up": [...]}``."""
        return {"p_down": self.p_down.tolist(), "p_up": self.p_up.tolist()}


def _check_scalar_rate(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InputError(f"{name}={value!r} must be a number: a probability per bit in [0, 1).")
    v = float(value)
    if not np.isfinite(v) or not 0.0 <= v < 1.0:
        raise InputError(f"{name}={v!r} must be a probability per bit in [0, 1).")
    return v
