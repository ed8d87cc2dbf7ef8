"""Commands of the runtime room (filled in by its issue)."""

from __future__ import annotations

__all__ = ["RuntimeCommands"]


class RuntimeCommands:
    """Mixin of :class:`wkbnoise.cli.Cli`."""
