"""Layer sensitivities ``G_l`` by forward perturbation, and the bias term of uncorrected drift (theory T5).

``G_l = E_x ||dz/dW_l||_F^2`` (``z`` the logits, or the output of an encoder) is estimated without
labels and without a deep-learning framework: perturb layer ``l`` alone by ``d ~ N(0, tau_l^2 I)`` and
average ``||z(W + d) - z(W)||^2 / tau_l^2`` over ``draws`` perturbations and the calibration inputs.
Since ``E_d ||J d||^2 = tau^2 ||J||_F^2`` this is unbiased to first order. The *linearity check* repeats
the first draw at ``2 tau``: a linear response gives the same ratio; if the two differ by more than
``tol`` the step is halved (at most ``max_halvings`` times) and the outcome is recorded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .parallel import serial_blas

__all__ = ["Sensitivities", "layer_sensitivities", "bias_distortion", "output_distortion", "model_outputs"]


@dataclass(frozen=True)
class Sensitivities:
    """``G_l`` per quantized layer, with how each was measured.

    Attributes
    ----------
    names : tuple of str
        Layer names in forward order.
    G : ndarray of float64
        ``E_x ||dz/dW_l||_F^2`` [output^2 per weight-unit^2].
    G_se : ndarray of float64
        Standard error of each ``G_l`` over the draws (NaN with one draw).
    tau : ndarray of float64
        Perturbation standard deviation used per layer [weight units].
    linearity : ndarray of float64
        Ratio of the first draw's estimate at ``2 tau`` to the one at ``tau`` (1 when linear).
    linear : ndarray of bool
        Whether ``|linearity - 1| <= tol`` was reached.
    draws, n_inputs : int
        Perturbations per layer and calibration inputs used.
    """

    names: tuple
    G: np.ndarray
    G_se: np.ndarray
    tau: np.ndarray
    linearity: np.ndarray
    linear: np.ndarray
    draws: int
    n_inputs: int

    def as_dict(self) -> dict[str, float]:
        """``{layer name: G_l}``."""
        return dict(zip(self.names, self.G.tolist(), strict=True))


def model_outputs(model, x, weights: Mapping[str, np.ndarray] | None = None, batch_size: int = 256, *,
                  threads: int | None = None) -> np.ndarray:
    """``z(W)``: the model's float32 outputs (logits, or the encoder output) on ``x``, as float64 [n, ...].

    ``x`` is an input array, a prepared input, or a :class:`~wkbnoise.text.TokenBatch` of token ids (the
    output of an encoder is then its mean-pooled embedding, of a text classifier its logits). ``threads``
    goes to :meth:`~wkbnoise.runtime.base.Model.forward` (chunks side by side; the same numbers).
    """
    from .text import TokenBatch, token_outputs

    if isinstance(x, TokenBatch):
        return token_outputs(model, x, weights, min(batch_size, 64)).astype(np.float64)
    forward = getattr(model, "forward", None)
    if forward is not None:
        try:
            if threads is None:
                out = forward(x, weights=weights, batch_size=batch_size)
            else:
                out = forward(x, weights=weights, batch_size=batch_size, threads=threads)
        except TypeError:
            out = model(x, weights=weights)
    else:
        out = model(x, weights=weights)
    return np.asarray(out, dtype=np.float64).reshape(len(x), -1)


def _inputs(x):
    from .text import TokenBatch

    return x if isinstance(x, TokenBatch) else np.asarray(x)


def output_distortion(z_ref: np.ndarray, z: np.ndarray) -> float:
    """``mean_x ||z - z_ref||^2`` [output^2], summed in float64 in a fixed order (exactly rounded)."""
    per_input = np.sum((np.asarray(z, dtype=np.float64) - z_ref) ** 2, axis=1)
    return math.fsum(per_input.tolist()) / len(per_input)


def layer_sensitivities(model, x, *, base_weights: Mapping[str, np.ndarray] | None = None, draws: int = 4,
                        tau_rel: float = 0.1, seed: int = 0, tol: float = 0.15, max_halvings: int = 3,
                        batch_size: int = 256, progress: bool = False) -> Sensitivities:
    """Estimate ``G_l`` for every quantized layer of ``model`` from unlabeled inputs.

    Parameters
    ----------
    model : Model
        Has ``.layers`` (name, weight) and ``forward(x, weights=...)``.
    x : ndarray of float32, or TokenBatch
        Preprocessed calibration inputs (no labels), or token ids for an encoder.
    base_weights : mapping, optional
        Weights at which the Jacobian is taken (default: the model's float weights); the campaign passes
        the clean INT-B dequantized weights.
    draws : int
        Gaussian perturbations per layer, >= 1.
    tau_rel : float
        Perturbation std as a fraction of the layer's quantization step ``||W_l||_inf / 127`` [dimensionless].
    seed : int
        Seed of the perturbations.
    tol : float
        Largest accepted ``|linearity - 1|``.

    Returns
    -------
    Sensitivities
    """
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise InputError(f"draws={draws!r} must be an integer >= 1.")
    if not (isinstance(tau_rel, int | float) and tau_rel > 0):
        raise InputError(f"tau_rel={tau_rel!r} must be a number > 0 (a fraction of the quantization step).")
    x = _inputs(x)
    if len(x) == 0:
        raise InputError("x is empty: give at least one unlabeled calibration input.")
    with serial_blas():
        return _sensitivities(model, x, base_weights, draws, tau_rel, seed, tol, max_halvings, batch_size, progress)


def _sensitivities(model, x, base_weights, draws, tau_rel, seed, tol, max_halvings, batch_size, progress):
    base = {ly.name: np.asarray((base_weights or {}).get(ly.name, ly.weight), dtype=np.float32) for ly in model.layers}
    z0 = model_outputs(model, x, base, batch_size)
    names, G, G_se, taus, lin, ok = [], [], [], [], [], []
    layers = list(model.layers)
    it = layers
    if progress:
        from tqdm import tqdm

        it = tqdm(layers, desc="sensitivities", unit="layer", leave=False)
    for index, ly in enumerate(it):
        w = base[ly.name]
        step = float(np.max(np.abs(w))) / 127.0 or 1e-3
        tau = tau_rel * step
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))
        dirs = [rng.standard_normal(w.shape).astype(np.float32) for _ in range(draws)]

        def response(d, t, w=w, name=ly.name):
            trial = dict(base)
            trial[name] = (w + np.float32(t) * d).astype(np.float32)
            return output_distortion(z0, model_outputs(model, x, trial, batch_size)) / t**2

        for attempt in range(max_halvings + 1):
            first = response(dirs[0], tau)
            ratio = response(dirs[0], 2 * tau) / first if first > 0 else 1.0
            if abs(ratio - 1) <= tol or attempt == max_halvings:
                break
            tau *= 0.5
        est = [first] + [response(d, tau) for d in dirs[1:]]
        names.append(ly.name)
        G.append(math.fsum(est) / len(est))
        G_se.append(float(np.std(est, ddof=1) / np.sqrt(draws)) if draws > 1 else float("nan"))
        taus.append(tau)
        lin.append(ratio)
        ok.append(abs(ratio - 1) <= tol)
    return Sensitivities(tuple(names), np.array(G), np.array(G_se), np.array(taus), np.array(lin), np.array(ok, dtype=bool),
                         draws, int(len(x)))


def bias_distortion(model, x, expected_weights: Mapping[str, np.ndarray], *,
                    base_weights: Mapping[str, np.ndarray] | None = None, batch_size: int = 256) -> float:
    """Distortion of a deterministic weight shift: ``mean_x ||z(E[W~]) - z(W)||^2`` [output^2].

    One forward pass with the expected weights (the uncorrected mean drift of theory T1) gives the
    bias term of T5 for all layers together, cross terms included.
    """
    base = {ly.name: np.asarray((base_weights or {}).get(ly.name, ly.weight), dtype=np.float32) for ly in model.layers}
    shifted = dict(base)
    shifted.update({k: np.asarray(v, dtype=np.float32) for k, v in expected_weights.items()})
    with serial_blas():
        z0 = model_outputs(model, x, base, batch_size)
        return output_distortion(z0, model_outputs(model, x, shifted, batch_size))
