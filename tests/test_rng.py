"""Counter-based RNG: njit draws == NumPy twins, keys, alias tables."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from wkbnoise import InputError
from wkbnoise._rng import _hash64, _uniform, alias_law, alias_table, derive_keys, hash_ref, uniform_ref


@njit
def _many(key, counters):
    h = np.empty(counters.size, np.uint64)
    u = np.empty(counters.size, np.float64)
    for i in range(counters.size):
        h[i] = _hash64(key, counters[i])
        u[i] = _uniform(key, counters[i])
    return h, u


def test_njit_draws_equal_numpy_twin_bit_for_bit():
    counters = np.concatenate([np.arange(10_000, dtype=np.uint64), np.array([2**64 - 1, 2**63], dtype=np.uint64)])
    for key in (0, 1, 0xDEADBEEF, 2**64 - 1):
        h, u = _many(np.uint64(key), counters)
        np.testing.assert_array_equal(h, hash_ref(key, counters))
        np.testing.assert_array_equal(u, uniform_ref(key, counters))


def test_uniform_is_on_the_53_bit_grid_and_uniform():
    u = uniform_ref(7, np.arange(200_000, dtype=np.uint64))
    assert u.min() >= 0.0 and u.max() < 1.0
    np.testing.assert_array_equal(u * 2.0**53, np.floor(u * 2.0**53))
    # mean 1/2 with sd sqrt(1/12 / n); 4.5 sd tolerance
    assert abs(u.mean() - 0.5) < 4.5 * np.sqrt(1 / 12 / u.size)
    counts = np.histogram(u, bins=20, range=(0, 1))[0]
    from scipy import stats
    assert stats.chisquare(counts).pvalue > 1e-4


def test_derive_keys_depend_on_where_not_when():
    a = derive_keys(5, (0, 1, 2), 4)
    assert a.dtype == np.uint64 and a.shape == (4,)
    np.testing.assert_array_equal(a, derive_keys(5, (0, 1, 2), 4))
    assert not np.array_equal(a, derive_keys(5, (0, 1, 3), 4))
    assert not np.array_equal(a, derive_keys(6, (0, 1, 2), 4))
    np.testing.assert_array_equal(derive_keys(5, (0, 1, 2), 6)[:4], a)  # more layers keep the first keys
    ss = np.random.SeedSequence(5, spawn_key=(0,))
    np.testing.assert_array_equal(derive_keys(ss, (1, 2), 4), a)


@pytest.mark.parametrize("bad", [dict(seed=-1), dict(seed=1.5), dict(seed=True), dict(spawn_key=(-1,)),
                                 dict(spawn_key="ab"), dict(n=-1)])
def test_derive_keys_refuse_bad_input(bad):
    kw = dict(seed=0, spawn_key=(0,), n=2) | bad
    with pytest.raises(InputError):
        derive_keys(**kw)


def test_alias_table_realises_the_law_and_never_draws_zeros():
    rng = np.random.default_rng(0)
    for trial in range(20):
        p = rng.random(256) ** 8
        p[rng.random(256) < 0.5] = 0.0
        if trial == 0:
            p[:] = 0.0
            p[3] = 1.0
        p /= p.sum()
        t, a = alias_table(p)
        law = alias_law(t, a)
        assert np.max(np.abs(law - p)) < 1e-15
        assert np.all(law[p == 0] == 0.0)
        assert np.all(p[a[p == 0]] > 0)


def test_alias_table_refuses_a_non_law():
    with pytest.raises(InputError):
        alias_table(np.full(256, 1.0))
    with pytest.raises(InputError):
        alias_table(np.full(16, 1 / 16))
