"""NumPy/Numba inference runtime: safetensors weights (PyTorch / Hugging Face names) -> float32 forward passes.

``load_model(path)`` builds one of the zoo architectures from the file's metadata, or a Hugging Face BERT
encoder from its ``config.json``; ``model(x, weights={...})`` swaps weights per call without copying them.
See docs/runtime.md.
"""

from __future__ import annotations

from . import layers
from .base import Model, PreparedInput, QuantLayer, fold_batchnorm
from .loader import SafetensorsFile, read_header, read_safetensors
from .models import ARCHITECTURES, accuracy, load_model, predict

__all__ = [
    "load_model", "Model", "QuantLayer", "PreparedInput", "accuracy", "predict", "ARCHITECTURES",
    "read_safetensors", "read_header", "SafetensorsFile", "fold_batchnorm", "layers",
]
