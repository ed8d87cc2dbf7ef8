"""G_l by forward perturbation (theory T5) against closed-form Jacobians of small stand-in models."""

from __future__ import annotations

import numpy as np
import pytest
from standin_models import TwoLayer

from wkbnoise import InputError
from wkbnoise.sensitivity import bias_distortion, layer_sensitivities, model_outputs


def _exact(model, x):
    """tr(A) and tr(A^2) of A = E_x J^T J per layer, for z = W2 act(W1 x + b1)."""
    w1, w2 = model.layers[0].weight.astype(np.float64), model.layers[1].weight.astype(np.float64)
    pre = x @ w1.T + model.b1
    mask = (pre > 0) if model.relu else np.ones_like(pre, dtype=bool)
    h = np.where(mask, pre, 0.0)
    n_out = w2.shape[0]
    out = {}
    # fc2: dz_i/dW2_ij = h_j  ->  A = I_out (x) E[h h^T]
    H = h.T @ h / len(x)
    out["fc2"] = (n_out * np.trace(H), n_out * np.trace(H @ H))
    # fc1: dz_i/dW1_jk = W2_ij mask_j x_k  ->  A = E_x[(W2 D_x)^T (W2 D_x) (x) x x^T]
    A = np.zeros((w1.size, w1.size))
    for xi, mi in zip(x, mask, strict=True):
        J = np.kron(w2 * mi, xi[None, :])  # [n_out, d_hidden * d_in]
        A += J.T @ J
    A /= len(x)
    out["fc1"] = (np.trace(A), np.trace(A @ A))
    return out


@pytest.mark.parametrize("relu", [False, True])
def test_G_matches_exact_jacobian(relu):
    model = TwoLayer(relu=relu, seed=1)
    x = np.random.default_rng(2).standard_normal((40, 12)).astype(np.float32)
    draws = 24
    sens = layer_sensitivities(model, x, draws=draws, tau_rel=0.05, seed=3)
    exact = _exact(model, x.astype(np.float64))
    for name, g in sens.as_dict().items():
        tr, tr2 = exact[name]
        sd = np.sqrt(2 * tr2 / draws)  # Var(d^T A d) = 2 tr(A^2) tau^4 for Gaussian d
        assert abs(g - tr) <= 4.5 * sd, (name, g, tr, sd)
        assert abs(g - 2 * tr) > 4.5 * sd  # a wrong reference (off by 2) would be rejected
    assert sens.linear.all()
    if not relu:
        np.testing.assert_allclose(sens.linearity, 1.0, atol=1e-3)


def test_linearity_check_shrinks_tau():
    """A ReLU net with a huge step is not linear: the check halves tau and records the ratio."""
    model = TwoLayer(relu=True, seed=1)
    x = np.random.default_rng(2).standard_normal((40, 12)).astype(np.float32)
    big = layer_sensitivities(model, x, draws=1, tau_rel=20.0, seed=0, tol=0.05, max_halvings=0)
    assert not big.linear[0] and abs(big.linearity[0] - 1) > 0.05
    assert big.linear[1]  # the last layer enters linearly at any step
    fixed = layer_sensitivities(model, x, draws=1, tau_rel=20.0, seed=0, tol=0.05, max_halvings=6)
    assert fixed.linear.all() and fixed.tau[0] < big.tau[0] and fixed.tau[1] == big.tau[1]


def test_bias_term_exact():
    model = TwoLayer(seed=4)
    x = np.random.default_rng(5).standard_normal((30, 12)).astype(np.float32)
    e = np.full(model.layers[0].weight.shape, 0.01, dtype=np.float32)
    got = bias_distortion(model, x, {"fc1": model.layers[0].weight + e})
    w2 = model.layers[1].weight.astype(np.float64)
    expect = np.mean(np.sum((x @ e.T.astype(np.float64) @ w2.T) ** 2, axis=1))
    assert got == pytest.approx(expect, rel=1e-3)
    assert model_outputs(model, x).shape == (30, 5)


def test_bad_inputs():
    model = TwoLayer()
    with pytest.raises(InputError, match="draws"):
        layer_sensitivities(model, np.zeros((2, 12), np.float32), draws=0)
    with pytest.raises(InputError, match="empty"):
        layer_sensitivities(model, np.zeros((0, 12), np.float32))
