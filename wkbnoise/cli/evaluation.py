"""Commands of the evaluation room (filled in by its issue)."""

from __future__ import annotations

__all__ = ["EvaluationCommands"]


class EvaluationCommands:
    """Mixin of :class:`wkbnoise.cli.Cli`."""
