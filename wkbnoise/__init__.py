"""wkbnoise: how a quantized network behaves when its weights sit in leaky thin-oxide memory.

physics -> flip rates -> quantized weights -> flip kernels -> runtime -> evaluation -> CLI.
"""

from __future__ import annotations

from .errors import InputError, ModelFileError, PhysicsDomainError, StoreError, WkbnoiseError
from .parallel import threads
from .rates import FlipRates

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "WkbnoiseError",
    "InputError",
    "PhysicsDomainError",
    "ModelFileError",
    "StoreError",
    "FlipRates",
    "threads",
]
