"""Commands of the physics room (filled in by its issue)."""

from __future__ import annotations

__all__ = ["PhysicsCommands"]


class PhysicsCommands:
    """Mixin of :class:`wkbnoise.cli.Cli`."""
