"""The library's exception hierarchy.

Every error that the library raises on purpose derives from :class:`WkbnoiseError`.
``python -m wkbnoise`` prints such an error as one line on stderr and exits with code 2;
anything else keeps its traceback, because it is a bug.

A message names the argument and its value, the rule that was broken, and the fix, e.g.
``"p_flip=0.5 gives a = 1 - 2p = 0: the stored bits carry no information. Use p_flip < 0.5."``
"""

__all__ = ["WkbnoiseError", "InputError", "PhysicsDomainError", "ModelFileError", "StoreError"]


class WkbnoiseError(Exception):
    """Raised on purpose; the CLI prints it without a traceback."""


class InputError(WkbnoiseError, ValueError):
    """Bad argument value, shape or dtype."""


class PhysicsDomainError(InputError):
    """Outside the model's validity: ``a_k <= 0``, a target that cannot be reached, ..."""


class ModelFileError(WkbnoiseError):
    """A weight file that cannot be used: not safetensors, missing keys or metadata, bad dtype."""


class StoreError(WkbnoiseError):
    """An HDF5 run file that does not match the requested campaign."""
