"""Closed forms T1-T4, V_l(m), LUT moments: exact enumeration over every flip mask for B <= 8."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from wkbnoise import FlipRates, InputError
from wkbnoise import theory as th


def _enumerate(rates: FlipRates, encoding: str):
    """Brute force: for every stored code and flip mask, its probability and the read value."""
    b = rates.bits
    q = th.code_values(b, encoding)
    law = np.zeros((2**b, 2**b))
    for u in range(2**b):
        for mask in range(2**b):
            prob = 1.0
            for k in range(b):
                bit = (u >> k) & 1
                p = rates.p_down[k] if bit else rates.p_up[k]
                prob *= p if (mask >> k) & 1 else 1.0 - p
            law[u, u ^ mask] += prob
    return law, q


RATES = [FlipRates.symmetric(0.1, 4), FlipRates.uniform(0.2, 0.05, 5).protect_top(1),
         FlipRates(np.linspace(0.01, 0.3, 6), np.linspace(0.1, 0.0, 6)), FlipRates.symmetric(0.07, 8)]


@pytest.mark.parametrize("rates", RATES, ids=repr)
@pytest.mark.parametrize("encoding", ["twos", "signmag"])
def test_t1_t2_t3_against_enumeration(rates, encoding):
    law, q = _enumerate(rates, encoding)
    np.testing.assert_allclose(th.transition_matrix(rates), law, atol=1e-15)
    mean = law @ q
    var = law @ q**2 - mean**2
    np.testing.assert_allclose(th.mean_drift(rates, encoding), mean, atol=1e-9)
    np.testing.assert_allclose(th.conditional_variance(rates, encoding), var, atol=1e-8)
    mom = th.conditional_moments(rates, encoding)
    np.testing.assert_allclose(mom["mu4"], law @ q**4 - 4 * mean * (law @ q**3) + 6 * mean**2 * (law @ q**2)
                               - 3 * mean**4, rtol=1e-9, atol=1e-6)
    x = np.random.default_rng(0).random(2**rates.bits)
    np.testing.assert_allclose(th.apply_channel(rates, x), x @ law, atol=1e-12)
    np.testing.assert_allclose(th.apply_channel(rates, x, adjoint=True), law @ x, atol=1e-12)
    for code in (0, 2**rates.bits - 1, 3):
        np.testing.assert_allclose(th.transition_row(rates, code), law[code], atol=1e-15)
        vals, probs = th.error_law(rates, code, encoding)
        assert abs(probs.sum() - 1) < 1e-12
        np.testing.assert_allclose(probs @ vals, mean[code] - q[code], atol=1e-9)


def test_t1_affine_drift_symmetric():
    r = FlipRates.symmetric(0.1, 8)
    gain, offset = th.affine_drift(r)
    q = th.code_values(8)
    np.testing.assert_allclose(th.mean_drift(r), 0.8 * q - 0.1, atol=1e-12)
    assert (gain, offset) == (0.8, -0.1)
    # the drift without its -p term is wrong by exactly p on every code
    assert np.all(np.abs(th.mean_drift(r) - 0.8 * q) > 0.099)
    assert th.affine_drift(FlipRates.uniform(0.2, 0.05, 8)) == (0.75, -0.05)
    with pytest.raises(InputError, match="mean_drift"):
        th.affine_drift(r.protect_top(1))


def test_t1_sign_magnitude_is_not_affine():
    r = FlipRates.symmetric(0.1, 8)
    q = th.code_values(8, "signmag")
    drift = th.mean_drift(r, "signmag")
    valid = np.arange(256) != 128
    slope, icpt = np.polyfit(q[valid], drift[valid], 1)
    assert np.max(np.abs(drift[valid] - (slope * q[valid] + icpt))) > 1.0


def test_t2_hierarchy_and_shares():
    r = FlipRates.symmetric(0.1, 8)
    np.testing.assert_allclose(th.conditional_variance(r), th.symmetric_variance(0.1, 8), rtol=1e-12)
    assert th.symmetric_variance(0.1, 8) == pytest.approx(0.09 * 65535 / 3)
    pv = th.plane_variances(r)
    np.testing.assert_allclose(pv.sum(axis=1), th.conditional_variance(r))
    np.testing.assert_allclose(pv[0] / pv[0].sum(), 3 * 4.0 ** np.arange(8) / (4**8 - 1))
    assert [round(th.top_plane_share(8, m), 4) for m in (1, 2, 3)] == [0.7500, 0.9375, 0.9844]
    assert th.variance_share(r, [7]) == pytest.approx(th.top_plane_share(8, 1), rel=1e-12)
    assert th.variance_share(r, [6, 7]) == pytest.approx(th.top_plane_share(8, 2), rel=1e-12)
    assert th.top_plane_share(8, 1) == pytest.approx(3 / 4, abs=2e-5)
    # sign-magnitude: the sign plane's share is not 3/4
    assert abs(th.variance_share(r, [7], "signmag") - 0.75) > 0.05


def test_t4_weight_units():
    r = FlipRates.symmetric(0.01, 8)
    np.testing.assert_allclose(th.weight_variance(r, 0.5), 0.25 * th.conditional_variance(r))
    two = th.weight_variance(r, np.array([1.0, 2.0]))
    assert two.shape == (2, 256)
    np.testing.assert_allclose(two[1] / two[0], 4.0)


@pytest.mark.parametrize("m", range(0, 9))
def test_residual_variance_closed_form(m):
    p = 0.05
    r = FlipRates.symmetric(p, 8)
    closed = p * (1 - p) / (1 - 2 * p) ** 2 * (4 ** (8 - m) - 1) / 3
    assert th.residual_variance(r, m) == pytest.approx(closed, rel=1e-12)
    assert th.residual_variance(r.protect_top(m), 0) == pytest.approx(closed, rel=1e-12)


def test_lut_moments_against_enumeration():
    r = FlipRates.uniform(0.15, 0.05, 5)
    law, q = _enumerate(r, "twos")
    g = np.random.default_rng(2).standard_normal(32) * 10
    mom = th.lut_error_moments(r, g)
    e = g[None, :] - q[:, None]
    np.testing.assert_allclose(mom["bias"], (law * e).sum(1), atol=1e-9)
    np.testing.assert_allclose(mom["m2"], (law * e**2).sum(1), rtol=1e-10)
    np.testing.assert_allclose(mom["m4"], (law * e**4).sum(1), rtol=1e-10)
    h = np.random.default_rng(3).random(32)
    bias, mse = th.lut_bias_mse(r, g, h)
    assert bias == pytest.approx(h @ (law * e).sum(1) / h.sum())
    assert mse == pytest.approx(h @ (law * e**2).sum(1) / h.sum())


def test_gaussian_model():
    r = FlipRates.symmetric(0.1, 8)
    assert th.gaussian_variance(r) == pytest.approx(th.symmetric_variance(0.1, 8))
    assert th.gaussian_tail_probability(1.0, 1.96) == pytest.approx(0.05, abs=1e-3)
    # the exact error of a single code has atoms at +-2^(B-1): the Gaussian misses their weight
    vals, probs = th.error_law(FlipRates.symmetric(0.01, 8), 0)
    p_exact = probs[np.abs(vals) >= 128].sum()
    p_gauss = th.gaussian_tail_probability(th.symmetric_variance(0.01, 8), 128)
    assert p_exact > 0.009 and p_gauss < 0.3 * p_exact


def test_large_b_and_refusals():
    r = FlipRates.symmetric(0.01, 16)
    assert th.transition_row(r, 12345).sum() == pytest.approx(1.0)
    assert th.transition_row(r, 12345).argmax() == 12345
    with pytest.raises(InputError, match="transition_row"):
        th.transition_matrix(r)
    with pytest.raises(InputError):
        th.transition_row(FlipRates.symmetric(0.01, 4), 16)
    with pytest.raises(InputError):
        th.mask_probabilities(0.5, 8)
    with pytest.raises(InputError):
        th.code_values(8, "ones")
    with pytest.raises(InputError):
        th.mean_drift(0.1)
    with pytest.raises(InputError):
        th.residual_variance(FlipRates.symmetric(0.1, 8), 9)


def test_symmetric_law_depends_only_on_mask():
    r = FlipRates.symmetric(0.2, 6)
    t = th.transition_matrix(r)
    m = th.mask_probabilities(0.2, 6)
    for u, v in itertools.product(range(64), repeat=2):
        assert t[u, v] == pytest.approx(m[u ^ v], rel=1e-12)
