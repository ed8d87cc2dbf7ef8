"""The command-line interface: ``python -m wkbnoise COMMAND [--flags] [--json]``.

Each stage of the pipeline contributes its commands as a mixin class in its own module
(``physics``, ``faults``, ``runtime``, ``evaluation``); :class:`Cli` gathers them for fire.
Commands parse and check their flags, call the library, print a table or one JSON object,
and return ``None``.
"""

from __future__ import annotations

from .design import DesignCommands
from .evaluation import EvaluationCommands
from .faults import FaultCommands
from .physics import PhysicsCommands
from .runtime import RuntimeCommands

__all__ = ["Cli"]


class Cli(PhysicsCommands, FaultCommands, RuntimeCommands, EvaluationCommands, DesignCommands):
    """wkbnoise: quantized networks in leaky thin-oxide memories, and the ECC bits that buy accuracy back.

    Every command takes --json and then prints one JSON object on stdout.
    A user mistake prints one line on stderr and exits with code 2.
    """
