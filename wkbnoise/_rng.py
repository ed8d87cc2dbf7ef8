"""Counter-based random numbers: seed -> uint64 keys, and draws that are pure functions of (key, counter).

A draw depends on *where* it is (the key of a layer and trial, the counter of an element and plane),
never on *when* it is made, so results do not depend on thread count, order or resume point
(docs/internals.md). The njit functions here are used inside the kernels; each has a NumPy twin
(``hash_ref``, ``uniform_ref``) with the same body on uint64 arrays.

- :func:`_hash64` is the splitmix64 finaliser of ``key + (counter + 1) * gamma``: 64 random bits.
- :func:`_uniform` keeps the top 53 of them: a float64 in [0, 1) on the grid ``2^-53``.
- :func:`alias_table` builds Walker/Vose alias tables for drawing a whole flip mask from one hash.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .errors import InputError

__all__ = ["derive_keys", "hash_ref", "uniform_ref", "alias_table", "alias_law", "check_key"]

_GAMMA, _M1, _M2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_ONE = np.uint64(1)
_TWO_M53 = 2.0**-53
ALIAS_SIZE = 256          # one alias table covers up to 8 planes; the index is the top 8 bits of a hash


@njit(cache=True, nogil=True, inline="always")
def _hash64(key, counter):
    """uint64 key, uint64 counter -> uint64: splitmix64 finaliser of key + (counter + 1) * gamma."""
    z = key + (counter + _ONE) * _GAMMA
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True, nogil=True, inline="always")
def _uniform(key, counter):
    """uint64 key, uint64 counter -> float64 in [0, 1), a multiple of 2^-53."""
    return np.float64(_hash64(key, counter) >> _S11) * _TWO_M53


def hash_ref(key: int | np.uint64, counter: np.ndarray) -> np.ndarray:
    """NumPy twin of ``_hash64`` on a uint64 array of counters."""
    key = np.uint64(key)
    counter = np.asarray(counter, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = key + (counter + _ONE) * _GAMMA
        z = (z ^ (z >> _S30)) * _M1
        z = (z ^ (z >> _S27)) * _M2
        return z ^ (z >> _S31)


def uniform_ref(key: int | np.uint64, counter: np.ndarray) -> np.ndarray:
    """NumPy twin of ``_uniform``: float64 in [0, 1) on the 2^-53 grid."""
    return (hash_ref(key, counter) >> _S11).astype(np.float64) * _TWO_M53


def check_key(key: object) -> np.uint64:
    """A kernel key: an integer in 0 .. 2^64 - 1 (e.g. one entry of :func:`derive_keys`)."""
    if isinstance(key, bool) or not isinstance(key, int | np.integer) or not 0 <= int(key) < 2**64:
        raise InputError(f"key={key!r} must be an integer in 0..2^64-1; get one per layer from "
                         "derive_keys(seed, spawn_key, n).")
    return np.uint64(int(key))


def derive_keys(seed: int | np.random.SeedSequence, spawn_key: tuple[int, ...] = (), n: int = 1) -> np.ndarray:
    """One uint64 key per layer for one trial of one campaign point.

    Parameters
    ----------
    seed : int or numpy.random.SeedSequence
        The campaign's root seed (an int >= 0), or a SeedSequence whose own spawn key is extended.
    spawn_key : tuple of int
        Where the draw is, e.g. ``(i_model, i_method, i_budget, i_p, trial)``; each entry >= 0.
    n : int
        Number of keys (layers), >= 0.

    Returns
    -------
    ndarray of uint64, shape (n,)
        ``SeedSequence(seed, spawn_key=spawn_key).generate_state(n, np.uint64)``: the keys depend on
        where the draw is, never on when it is made.

    Examples
    --------
    >>> k = derive_keys(0, (1, 2), 3)
    >>> k.dtype.name, k.shape, bool((k == derive_keys(0, (1, 2), 3)).all())
    ('uint64', (3,), True)
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise InputError(f"n={n!r} must be an integer >= 0 (the number of keys, one per layer).")
    try:
        spawn = tuple(int(s) for s in spawn_key)
    except (TypeError, ValueError) as exc:
        raise InputError(f"spawn_key={spawn_key!r} must be a tuple of integers >= 0.") from exc
    if any(s < 0 for s in spawn) or any(isinstance(s, bool) for s in spawn_key):
        raise InputError(f"spawn_key={spawn_key!r} must be a tuple of integers >= 0.")
    if isinstance(seed, np.random.SeedSequence):
        ss = np.random.SeedSequence(seed.entropy, spawn_key=tuple(seed.spawn_key) + spawn, pool_size=seed.pool_size)
    elif isinstance(seed, int | np.integer) and not isinstance(seed, bool) and int(seed) >= 0:
        ss = np.random.SeedSequence(int(seed), spawn_key=spawn)
    else:
        raise InputError(f"seed={seed!r} must be an integer >= 0 or a numpy.random.SeedSequence.")
    return ss.generate_state(int(n), np.uint64)


def alias_table(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias table for drawing an index in 0..255 with the given probabilities.

    A draw takes one 64-bit hash ``h``: ``i = h >> 56`` (top 8 bits) and ``u = (h mod 2^53) 2^-53`` (low 53
    bits, disjoint from the index); the result is ``i`` if ``u < threshold[i]`` else ``alias[i]``.
    Entries of probability exactly 0 get threshold 0 and an alias of positive probability, so they are
    never drawn (a protected plane never flips). The realised law (:func:`alias_law`) differs from the
    requested one by float64 rounding and the 2^-53 grid of ``u``: at most ~1e-15 per entry.

    Parameters
    ----------
    probabilities : ndarray of float64, shape (256,)
        Non-negative, summing to 1 (to rounding).

    Returns
    -------
    threshold : ndarray of float64, shape (256,)
    alias : ndarray of uint8, shape (256,)
    """
    p = np.asarray(probabilities, dtype=np.float64)
    if p.shape != (ALIAS_SIZE,) or np.any(p < 0) or not np.isfinite(p).all() or abs(p.sum() - 1.0) > 1e-9:
        raise InputError(f"probabilities must be {ALIAS_SIZE} non-negative numbers summing to 1.")
    n = ALIAS_SIZE
    scaled = p * n
    threshold = np.zeros(n)
    alias = np.arange(n, dtype=np.int64)
    zero = [i for i in range(n) if p[i] == 0.0]
    small = [i for i in range(n) if 0.0 < scaled[i] < 1.0] + zero[::-1]   # zeros are popped first
    large = [i for i in range(n) if scaled[i] >= 1.0]
    while small and large:
        s = small.pop()
        big = large[-1]
        threshold[s] = scaled[s]
        alias[s] = big
        scaled[big] = (scaled[big] + scaled[s]) - 1.0
        if scaled[big] < 1.0:
            large.pop()
            small.append(big)
    for i in large + small:              # what is left is 1 up to rounding
        threshold[i] = 1.0 if p[i] > 0.0 else 0.0
        alias[i] = i
    for i in zero:                       # never drawn: threshold 0 and an alias that can be drawn
        threshold[i] = 0.0
        if p[alias[i]] == 0.0:
            alias[i] = int(np.argmax(p))
    return threshold, alias.astype(np.uint8)


def alias_law(threshold: np.ndarray, alias: np.ndarray) -> np.ndarray:
    """The exact law realised by an alias table with 53-bit uniforms (for tests and docs), float64[256]."""
    n = threshold.size
    accept = np.ceil(threshold * 2.0**53) / 2.0**53        # P(u < t) on the 2^-53 grid
    accept = np.minimum(accept, 1.0)
    law = accept / n
    np.add.at(law, alias.astype(np.int64), (1.0 - accept) / n)
    return law
