"""Lookup tables: unbiasedness and MSE from exact enumeration, MMSE optimality, scale, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from wkbnoise import FlipRates, InputError
from wkbnoise import theory as th
from wkbnoise.correction import build_lut, correction_table
from wkbnoise.quant import code_histogram, quantize


def _hist(bits, encoding="twos"):
    w = np.random.default_rng(0).laplace(size=50_000).astype(np.float32)
    return code_histogram(quantize(w, bits, encoding=encoding))


@pytest.mark.parametrize("rates", [FlipRates.symmetric(0.1, 8), FlipRates.uniform(0.2, 0.05, 6)], ids=repr)
def test_affine_and_per_plane_unbiased_for_every_code(rates):
    for method in ("affine", "per-plane"):
        g = correction_table(rates, method=method)
        np.testing.assert_allclose(th.lut_error_moments(rates, g)["bias"], 0.0, atol=1e-9)
    np.testing.assert_allclose(correction_table(rates, method="affine"), correction_table(rates, method="per-plane"),
                               atol=1e-9)
    # the uncorrected table is biased by the T1 drift
    np.testing.assert_allclose(th.lut_error_moments(rates, correction_table(rates))["bias"],
                               th.mean_drift(rates) - th.code_values(rates.bits), atol=1e-9)


@pytest.mark.parametrize("encoding", ["twos", "signmag"])
def test_per_plane_unbiased_with_protection_and_per_plane_rates(encoding):
    r = FlipRates(np.linspace(0.01, 0.2, 7), np.linspace(0.1, 0.0, 7)).protect_top(2)
    g = correction_table(r, encoding=encoding, method="per-plane")
    mom = th.lut_error_moments(r, g, encoding)
    np.testing.assert_allclose(mom["bias"], 0.0, atol=1e-9)
    if encoding == "twos":   # per-code MSE is sum_k c_k^2 v_k(b_k) / a_k^2; averaged over bits it is V_l
        c2 = th.plane_coefficients(7) ** 2
        b = th.code_bits(7)
        v = np.where(b == 1, r.p_down * (1 - r.p_down), r.p_up * (1 - r.p_up))
        np.testing.assert_allclose(mom["m2"], (v * c2 / r.a**2).sum(1), rtol=1e-10)
        assert mom["m2"].mean() == pytest.approx(th.residual_variance(r, 0), rel=1e-10)


def test_per_plane_mse_is_residual_variance_symmetric():
    for m in (0, 1, 3):
        r = FlipRates.symmetric(0.05, 8).protect_top(m)
        mom = th.lut_error_moments(r, correction_table(r, method="per-plane"))
        np.testing.assert_allclose(mom["m2"], th.residual_variance(FlipRates.symmetric(0.05, 8), m), rtol=1e-10)


@pytest.mark.parametrize("encoding", ["twos", "signmag"])
def test_bayes_is_the_posterior_mean_and_beats_unbiased_tables(encoding):
    r = FlipRates.uniform(0.1, 0.03, 8)
    h = _hist(8, encoding)
    t = th.transition_matrix(r)
    q = th.code_values(8, encoding)
    g = correction_table(r, encoding=encoding, method="bayes", histogram=h)
    joint = h[:, None] * t
    reach = joint.sum(0) > 0
    np.testing.assert_allclose(g[reach], (q @ joint)[reach] / joint.sum(0)[reach], rtol=1e-9, atol=1e-9)
    mse = {m: th.lut_bias_mse(r, correction_table(r, encoding=encoding, method=m, histogram=h), h, encoding)[1]
           for m in ("none", "per-plane", "bayes", "bayes-gain")}
    assert mse["bayes"] < mse["bayes-gain"] < mse["per-plane"]
    assert mse["bayes"] < mse["none"]
    # MMSE: no other table does better, e.g. a perturbed posterior mean
    g2 = g + 0.5 * np.sign(np.random.default_rng(1).standard_normal(256))
    assert th.lut_bias_mse(r, g2, h, encoding)[1] > mse["bayes"]


def test_bayes_gain_keeps_the_clean_gain():
    r = FlipRates.symmetric(0.1, 8)
    h = _hist(8)
    q = th.code_values(8)
    for method, expect_unit in (("bayes", False), ("bayes-gain", True)):
        g = correction_table(r, method=method, histogram=h)
        cross = h @ (th.apply_channel(r, g, adjoint=True) * q)
        gain = cross / (h @ q**2)
        assert (abs(gain - 1) < 1e-12) == expect_unit
        if not expect_unit:
            assert gain < 0.9              # MMSE shrinks toward zero


def test_build_lut_scale_dtype_and_channels():
    r = FlipRates.symmetric(0.01, 8)
    lut = build_lut(r, np.float32(0.5), method="per-plane")
    assert lut.dtype == np.float32 and lut.shape == (256,) and lut.flags.c_contiguous
    np.testing.assert_allclose(lut, 0.5 * correction_table(r, method="per-plane"), rtol=1e-6)
    np.testing.assert_array_equal(build_lut(r, 1.0)[[0, 1, 127, 128, 255]], [0, 1, 127, -128, -1])
    two = build_lut(r, np.array([1.0, 2.0], np.float32), method="affine")
    assert two.shape == (2, 256)
    np.testing.assert_allclose(two[1], 2 * two[0], rtol=1e-6)


def test_refusals():
    r = FlipRates.symmetric(0.1, 8)
    with pytest.raises(InputError, match="sign-magnitude.*per-plane.*bayes"):
        build_lut(r, 1.0, encoding="signmag", method="affine")
    with pytest.raises(InputError, match="per-plane"):
        build_lut(r.protect_top(1), 1.0, method="affine")
    with pytest.raises(InputError, match="histogram"):
        build_lut(r, 1.0, method="bayes")
    with pytest.raises(InputError, match="method"):
        build_lut(r, 1.0, method="mmse")
    with pytest.raises(InputError, match="scale"):
        build_lut(r, -1.0)
    with pytest.raises(InputError, match="histogram"):
        build_lut(r, 1.0, method="bayes", histogram=np.ones(16))
    assert np.array_equal(build_lut(FlipRates.symmetric(0.0, 8), 1.0, method="affine"), build_lut(r, 1.0))
