"""Commands of the faults room (filled in by its issue)."""

from __future__ import annotations

__all__ = ["FaultCommands"]


class FaultCommands:
    """Mixin of :class:`wkbnoise.cli.Cli`."""
