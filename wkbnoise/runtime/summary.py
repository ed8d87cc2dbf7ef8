"""What ``wkbnoise info`` reports about a model: layers, sizes, ``||W||_inf``, clean float and int8 accuracy."""

from __future__ import annotations

import json
import time

import numpy as np

from ..quant import quantize
from .base import Model
from .models import accuracy

__all__ = ["int8_weights", "describe", "is_mnist_classifier", "warmup"]


def int8_weights(model: Model, bits: int = 8) -> dict[str, np.ndarray]:
    """Every quantizable layer quantized and dequantized (per-tensor symmetric, two's complement), float32.

    Parameters
    ----------
    model : Model
        A loaded model.
    bits : int
        Bits per weight.

    Returns
    -------
    dict of str to ndarray of float32
        Layer name -> dequantized weight, ready for ``model(x, weights=...)``.
    """
    return {ly.name: quantize(np.asarray(ly.weight), bits).dequantize().astype(np.float32, copy=False)
            for ly in model.layers}


def is_mnist_classifier(model: Model) -> bool:
    """True for a classifier that reads the bundled MNIST images (1x28x28) and has 10 outputs."""
    shape = list(model.input_spec.get("shape") or [])
    return model.task == "classifier" and shape in ([1, 28, 28], [28, 28, 1])


def describe(model: Model, images=None, labels=None) -> dict:
    """Architecture, quantizable layers (name, kind, shape, size, ``||W||_inf``), parameter count and, when
    ``images``/``labels`` are given, clean float and int8 accuracy [0..1]."""
    layers = [{"name": ly.name, "kind": ly.kind, "shape": list(ly.weight.shape), "n_weights": ly.n_weights,
               "w_inf": float(np.max(np.abs(ly.weight)))} for ly in model.layers]
    out = {"arch": model.arch, "task": model.task, "config": model.config,
           "path": None if model.path is None else str(model.path),
           "nodes": len(model.graph.nodes), "parameters": int(sum(a.size for a in model.params.values())),
           "quantizable_weights": int(sum(ly.n_weights for ly in model.layers)), "layers": layers}
    stored = model.metadata.get("wkbnoise.float_accuracy")
    if stored is not None:
        try:
            out["stored_float_accuracy"] = float(json.loads(stored))
        except (ValueError, TypeError):
            out["stored_float_accuracy"] = None
    if images is not None and labels is not None and model.task == "classifier":
        x = model.prepare(model.preprocess(images))
        out["float_accuracy"] = accuracy(model, x, labels)
        out["int8_accuracy"] = accuracy(model, x, labels, weights=int8_weights(model))
    return out


def warmup() -> list[dict]:
    """Compile the runtime's Numba kernels (cached on disk) and time a call of each [s]."""
    from . import _kernels

    rows = []
    x = np.random.default_rng(0).standard_normal((16, 64, 28, 28)).astype(np.float32)
    cols = np.empty((144, 64, 28, 28), np.float32)
    w = np.random.default_rng(1).standard_normal((16, 1, 3, 3)).astype(np.float32)
    out = np.empty((16, 64, 28, 28), np.float32)
    pooled = np.empty((16 * 64, 14, 14), np.float32)
    scores = x.reshape(-1, 28)  # 28,672 rows of 28 (the row kernels only rescale them)
    flat = x.reshape(-1)
    ones = np.ones(len(scores), np.float32)
    tiles = np.empty((16, 16, 64 * 14 * 14), np.float32)  # Winograd tiles of x (16 channels, 64 images)
    pad = np.empty(30 * 30, np.float32)
    b16 = np.zeros(16, np.float32)  # a bias
    calls = {"im2col_cnhw": (lambda: _kernels.im2col_cnhw(x, 0, 0, 3, 3, 1, 1, 1, 1, cols), "16x64x28x28, 3x3"),
             "depthwise_conv_cnhw": (lambda: _kernels.depthwise_conv_cnhw(x, w, np.zeros(16, np.float32), 1, 1,
                                                                         1, 1, out), "16x64x28x28, 3x3"),
             "winograd_input_cnhw": (lambda: _kernels.winograd_input_cnhw(x, 0, 0, 14, 14, 1, 1, pad, tiles),
                                     "16x64x28x28, 3x3 padding 1"),
             "winograd_output_cnhw": (lambda: _kernels.winograd_output_cnhw(tiles, b16, 0, 0, 14, 14, out),
                                      "16x64x28x28"),
             "max_pool_hw": (lambda: _kernels.max_pool_hw(x.reshape(16 * 64, 28, 28), 2, 2, 2, 2, 0, 0, pooled),
                             "16x64x28x28, 2x2 stride 2"),
             "softmax_shift_rows": (lambda: _kernels.softmax_shift_rows(scores), "28672 rows of 28"),
             "softmax_scale_rows": (lambda: _kernels.softmax_scale_rows(scores), "28672 rows of 28"),
             "center_rows": (lambda: _kernels.center_rows(scores, out.reshape(-1, 28)), "28672 rows of 28"),
             "scale_shift_rows": (lambda: _kernels.scale_shift_rows(scores, ones, w.reshape(-1)[:28].copy(),
                                                                    np.zeros(28, np.float32)), "28672 rows of 28"),
             "gelu_erf": (lambda: _kernels.gelu_erf(flat, out.reshape(-1)), "802816 values")}
    for name, (call, shape) in calls.items():
        t0 = time.perf_counter()
        call()
        t1 = time.perf_counter()
        call()
        t2 = time.perf_counter()
        rows.append({"kernel": name, "first_call_s": t1 - t0, "call_s": t2 - t1, "shape": shape})
    return rows
