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


def _sequential(model, x, base, draws, tau_rel, seed, tol, max_halvings):
    """The estimate one layer and one forward pass after another (the form before the passes ran side by side)."""
    from wkbnoise.parallel import serial_blas
    from wkbnoise.sensitivity import output_distortion

    out = []
    with serial_blas():
        z0 = model_outputs(model, x, base)
        for index, ly in enumerate(model.layers):
            w = base[ly.name]
            tau = tau_rel * (float(np.max(np.abs(w))) / 127.0 or 1e-3)
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))
            dirs = [rng.standard_normal(w.shape).astype(np.float32) for _ in range(draws)]

            def response(d, t, w=w, name=ly.name):
                trial = dict(base)
                trial[name] = (w + np.float32(t) * d).astype(np.float32)
                return output_distortion(z0, model_outputs(model, x, trial)) / t**2

            for attempt in range(max_halvings + 1):
                first = response(dirs[0], tau)
                ratio = response(dirs[0], 2 * tau) / first if first > 0 else 1.0
                if abs(ratio - 1) <= tol or attempt == max_halvings:
                    break
                tau *= 0.5
            est = [first] + [response(d, tau) for d in dirs[1:]]
            out.append((sum(est) / len(est), tau, ratio))
    return out


@pytest.mark.parametrize("tol", [0.15, 1e-12])  # 1e-12: every layer halves its tau to the limit
def test_side_by_side_passes_give_the_sequential_numbers(tol, monkeypatch):
    import numba

    from wkbnoise import sensitivity, threads, zoo

    model = zoo.load("lenet5")
    x = model.preprocess(zoo.calibration_images()[:64])
    base = {ly.name: ly.weight for ly in model.layers}
    ref = _sequential(model, x, base, 3, 0.1, 5, tol, 2)
    for group_bytes in (1, 1 << 30):  # one layer per group, and all together
        monkeypatch.setattr(sensitivity, "GROUP_BYTES", group_bytes)
        for n in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            with threads(n):
                sens = layer_sensitivities(model, x, draws=3, seed=5, tol=tol, max_halvings=2)
            assert np.allclose(sens.G, [r[0] for r in ref], rtol=1e-12, atol=0)
            assert np.array_equal(sens.tau, [r[1] for r in ref])
            assert np.array_equal(sens.linearity, [r[2] for r in ref])
    if tol < 1e-6:
        assert not sens.linear.any()  # the halvings really ran
