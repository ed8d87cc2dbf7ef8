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
    from .text.batch import _TokenResume

    if isinstance(x, _TokenResume):
        return x.outputs(weights).astype(np.float64)
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


#: perturbation directions held at once by the sensitivity estimate [bytes]: the layers whose draws fit
#: are measured together, so their forward passes can run side by side
GROUP_BYTES = 64 << 20


def _sensitivities(model, x, base_weights, draws, tau_rel, seed, tol, max_halvings, batch_size, progress):
    from .parallel import map_chunks
    from .text import TokenBatch, TokenCheckpoints

    base = {ly.name: np.asarray((base_weights or {}).get(ly.name, ly.weight), dtype=np.float32) for ly in model.layers}
    z0 = model_outputs(model, x, base, batch_size)
    layers = list(model.layers)
    # a perturbed layer changes nothing before its first read: each response pass starts there, from the
    # clean values kept once (the same outputs, bit for bit, as a whole pass; about half the work)
    cps = None
    if callable(getattr(model, "checkpoints", None)):
        if isinstance(x, TokenBatch):
            cps = TokenCheckpoints(model, x, base, min(batch_size, 64))  # the chunks of model_outputs
        elif isinstance(x, np.ndarray):
            cps = model.checkpoints(x, weights=base, batch_size=batch_size)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(layers), desc="sensitivities", unit="layer", leave=False)

    def response(name, d, t):
        trial = dict(base)
        trial[name] = (base[name] + np.float32(t) * d).astype(np.float32)
        start = x if cps is None else cps.at(name)
        return output_distortion(z0, model_outputs(model, start, trial, batch_size)) / t**2

    def measure(group):
        """Every layer of ``group`` (index, name, dirs, tau): at tau and 2 tau with the first direction, the
        others at tau; a layer whose ratio is not linear enough is measured again at half its tau."""
        done, todo, attempt = {}, list(group), 0
        while todo:
            tasks = [(i, name, d, t) for i, name, dirs, tau in todo
                     for d, t in [(dirs[0], tau), (dirs[0], 2 * tau)] + [(d, tau) for d in dirs[1:]]]
            # independent forward passes side by side, each on one BLAS thread: the same sums as in turn
            values = map_chunks(lambda k, slot: response(*tasks[k][1:]), len(tasks))
            again, pos = [], 0
            for i, name, dirs, tau in todo:
                first, double, rest = values[pos], values[pos + 1], values[pos + 2:pos + 1 + len(dirs)]
                pos += 1 + len(dirs)
                ratio = double / first if first > 0 else 1.0
                if abs(ratio - 1) <= tol or attempt == max_halvings:
                    done[i] = (name, [first, *rest], tau, ratio)
                    if bar is not None:
                        bar.update(1)
                else:
                    again.append((i, name, dirs, tau * 0.5))
            todo, attempt = again, attempt + 1
        return done

    results, group, held = {}, [], 0
    for index, ly in enumerate(layers):
        w = base[ly.name]
        step = float(np.max(np.abs(w))) / 127.0 or 1e-3
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))
        dirs = [rng.standard_normal(w.shape).astype(np.float32) for _ in range(draws)]
        group.append((index, ly.name, dirs, tau_rel * step))
        held += draws * w.nbytes
        if held >= GROUP_BYTES or index == len(layers) - 1:
            results.update(measure(group))
            group, held = [], 0
    if bar is not None:
        bar.close()
    names, G, G_se, taus, lin, ok = [], [], [], [], [], []
    for index in range(len(layers)):
        name, est, tau, ratio = results[index]
        names.append(name)
        G.append(math.fsum(est) / len(est))
        G_se.append(float(np.std(est, ddof=1) / np.sqrt(draws)) if draws > 1 else float("nan"))
        taus.append(tau)
        lin.append(ratio)
        ok.append(abs(ratio - 1) <= tol)
    return Sensitivities(tuple(names), np.array(G), np.array(G_se), np.array(taus), np.array(lin), np.array(ok, dtype=bool),
                         draws, int(len(x)))


def bias_distortion(model, x, expected_weights: Mapping[str, np.ndarray], *,
                    base_weights: Mapping[str, np.ndarray] | None = None, batch_size: int = 256,
                    z_ref: np.ndarray | None = None) -> float:
    """Distortion of a deterministic weight shift: ``mean_x ||z(E[W~]) - z(W)||^2`` [output^2].

    One forward pass with the expected weights (the uncorrected mean drift of theory T1) gives the
    bias term of T5 for all layers together, cross terms included. ``z_ref``: ``z(W)`` when the caller
    has it (:func:`model_outputs` at ``base_weights`` on one BLAS thread); computed otherwise.
    """
    base = {ly.name: np.asarray((base_weights or {}).get(ly.name, ly.weight), dtype=np.float32) for ly in model.layers}
    shifted = dict(base)
    shifted.update({k: np.asarray(v, dtype=np.float32) for k, v in expected_weights.items()})
    with serial_blas():
        z0 = model_outputs(model, x, base, batch_size) if z_ref is None else z_ref
        return output_distortion(z0, model_outputs(model, x, shifted, batch_size))
