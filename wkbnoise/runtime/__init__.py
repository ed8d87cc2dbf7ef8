"""NumPy/Numba inference runtime: a model is a graph of operators over named float32 weight tensors.

``load_model(path)`` reads a zoo or converted safetensors file, a Hugging Face folder or checkpoint, or an
ONNX / Keras file, and returns a :class:`Model` whose forward pass walks its graph
(:mod:`wkbnoise.runtime.graph`); ``model(x, weights={...})`` swaps weights per call without copying them.
"""

from __future__ import annotations

from . import layers
from .base import Checkpoints, Model, PreparedInput, QuantLayer, fold_batchnorm
from .graph import Graph, Node, run
from .loader import SafetensorsFile, read_header, read_safetensors
from .models import ARCHITECTURES, accuracy, load_model, model_from_graph, predict, save_model

__all__ = [
    "load_model", "save_model", "model_from_graph", "Model", "QuantLayer", "PreparedInput", "Checkpoints",
    "Graph", "Node", "run",
    "accuracy", "predict", "ARCHITECTURES", "read_safetensors", "read_header", "SafetensorsFile",
    "fold_batchnorm", "layers",
]
