"""ECC models (theory section 7): binomial-tail residual rates and check-bit cost."""

from __future__ import annotations

import math

import numpy as np
import pytest

from wkbnoise import FlipRates, InputError
from wkbnoise.ecc import code_table, get_code, protected_rates


def test_secded_word_failure_exact():
    c = get_code("secded-72-64")
    for p in (1e-4, 1e-2, 0.1):
        exact = 1 - (1 - p) ** 72 - 72 * p * (1 - p) ** 71
        assert float(c.word_failure(p)) == pytest.approx(exact, rel=1e-9)
    assert c.check_bits(64) == 8 and c.check_bits(65) == 16 and c.redundancy == pytest.approx(0.125)
    assert get_code("secded-39-32").check_bits(320) == 70


def test_residual_small_p_asymptote():
    # one term dominates: SECDED double errors are detected, not miscorrected -> beta_2 = 2
    c = get_code("secded-72-64")
    p = 1e-5
    assert float(c.residual_bit_error(p)) == pytest.approx(2 / 72 * math.comb(72, 2) * p**2, rel=1e-3)
    b = get_code("bch-64-t3")
    assert (b.n, b.k, b.t) == (85, 64, 3)
    assert float(b.residual_bit_error(p)) == pytest.approx(7 / 85 * math.comb(85, 4) * p**4, rel=1e-3)


def test_secded_fails_at_p_01():
    rows = {(r["code"], r["p_raw"]): r for r in code_table([1e-4, 0.1])}
    assert rows[("secded-72-64", 0.1)]["word_failure"] > 0.99
    assert not rows[("secded-72-64", 0.1)]["protects"]
    assert rows[("secded-72-64", 1e-4)]["protects"]


def test_protected_rates():
    r = FlipRates.uniform(0.02, 0.0, 8)
    assert protected_rates(r, 2, "ideal").protected_planes() == 2
    pr = protected_rates(r, 2, "secded-72-64")
    expect = float(get_code("secded-72-64").residual_bit_error(0.01)) / 0.01 * 0.02
    np.testing.assert_allclose(pr.p_down[-2:], expect)
    np.testing.assert_array_equal(pr.p_down[:-2], 0.02)
    assert pr.p_up.sum() == 0


def test_unknown_code():
    with pytest.raises(InputError, match="bch-K-tT"):
        get_code("hamming")


def test_protected_rates_keep_raw_rates_where_the_code_no_longer_protects():
    r = FlipRates.uniform(0.9, 0.0, 8)              # a charge-loss cell far past its retention time
    pr = protected_rates(r, 3, "bch-64-t3")
    np.testing.assert_array_equal(pr.p_down, r.p_down)
    low = protected_rates(FlipRates.uniform(1e-3, 0.0, 8), 3, "bch-64-t3")
    assert 0 < low.p_down[-1] < 1e-6 and low.p_down[0] == 1e-3
