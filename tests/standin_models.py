"""Small NumPy models with the runtime's interface (``.layers``, ``forward(x, weights=None)``), for the
evaluation tests: their Jacobians are known in closed form, so sensitivities have an exact reference."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class QuantLayer:
    name: str
    weight: np.ndarray
    n_weights: int
    kind: str = "linear"


class TwoLayer:
    """``z = W2 act(W1 x + b1) + b2`` with ``act`` = identity or ReLU; inputs float32 [n, d_in]."""

    task = "classifier"
    arch = "standin"

    def __init__(self, d_in=12, d_hidden=16, d_out=5, relu=False, seed=0):
        rng = np.random.default_rng(seed)
        w1 = (rng.standard_normal((d_hidden, d_in)) / np.sqrt(d_in)).astype(np.float32)
        w2 = (rng.standard_normal((d_out, d_hidden)) / np.sqrt(d_hidden)).astype(np.float32)
        for w in (w1, w2):
            w.setflags(write=False)
        self.layers = [QuantLayer("fc1", w1, w1.size), QuantLayer("fc2", w2, w2.size)]
        self.b1 = (0.1 * rng.standard_normal(d_hidden)).astype(np.float32)
        self.relu = relu
        self.config = {"d_in": d_in}
        self.calls = 0

    def preprocess(self, images):
        return np.asarray(images, dtype=np.float32).reshape(len(images), -1) / 255.0 - 0.5

    def forward(self, x, weights=None, batch_size=256):
        self.calls += 1
        weights = weights or {}
        w1 = weights.get("fc1", self.layers[0].weight)
        w2 = weights.get("fc2", self.layers[1].weight)
        h = x @ w1.T + self.b1
        if self.relu:
            h = np.maximum(h, 0)
        return (h @ w2.T).astype(np.float32)

    __call__ = forward


def campaign_model_kwargs(name: str) -> dict:
    """TwoLayer arguments of the stand-in campaign model called ``name`` (a ReLU net, 64 -> 48 -> 10)."""
    return {"d_in": 64, "d_hidden": 48, "d_out": 10, "relu": True, "seed": len(name) + ord(name[0])}


def campaign_loader(spec) -> TwoLayer:
    """``loader`` of run_sweep; module-level, so Dask workers import it (tests/ on their PYTHONPATH)."""
    return TwoLayer(**campaign_model_kwargs(spec.name))


def campaign_inputs(config, model):
    """``inputs`` of run_sweep: 300 Gaussian inputs labelled by the clean model, 64 calibration inputs."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((300, 64)).astype(np.float32)
    return x, np.argmax(model(x), axis=1), rng.standard_normal((64, 64)).astype(np.float32)
