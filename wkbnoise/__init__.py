"""wkbnoise: how a quantized network behaves when its weights sit in leaky thin-oxide memory.

physics -> flip rates -> quantized weights -> flip kernels -> runtime -> evaluation -> CLI.
"""

from __future__ import annotations

from .errors import InputError, ModelFileError, PhysicsDomainError, StoreError, WkbnoiseError
from .parallel import threads
from .rates import FlipRates

__version__ = "0.1.0"


def load_model(path, config=None):
    """Load a network (zoo or converted ``.safetensors``, Hugging Face folder, ``.onnx``, Keras ``.h5``);
    see :func:`wkbnoise.runtime.load_model`."""
    from .runtime.models import load_model as _load

    return _load(path, config)


__all__ = [
    "__version__",
    "WkbnoiseError",
    "InputError",
    "PhysicsDomainError",
    "ModelFileError",
    "StoreError",
    "FlipRates",
    "threads",
    "load_model",
]
