"""``python -m wkbnoise``: fire over :class:`wkbnoise.cli.Cli`, with one-line errors and exit code 2."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from unittest import mock

import fire
import fire.core

from .cli import Cli
from .errors import WkbnoiseError

__all__ = ["main"]

_PROG = "wkbnoise"


def _one_line_fire_error(component_trace) -> None:
    """Replace fire's usage dump with one line that says what was wrong and what to do."""
    last = component_trace.elements[-1]
    if "-h" in last.args or "--help" in last.args:
        _ORIGINAL_DISPLAY_ERROR(component_trace)
        return
    command = " ".join(e.name for e in component_trace.elements[1:] if getattr(e, "name", None)) or ""
    where = f"{_PROG} {command}".strip()
    message = last.ErrorAsStr().strip().replace("\n", " ")
    sys.stderr.write(f"{_PROG}: error: {message}. Run `python -m {where} --help` to see the accepted flags.\n")


_ORIGINAL_DISPLAY_ERROR = fire.core._DisplayError


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return the process exit code (0 ok, 1 a check failed, 2 a user mistake)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        with mock.patch.object(fire.core, "_DisplayError", _one_line_fire_error):
            fire.Fire(Cli, command=args, name=_PROG)
    except WkbnoiseError as exc:
        message = str(exc).strip().replace("\n", " ")
        sys.stderr.write(f"{_PROG}: error: {message}\n")
        return 2
    except fire.core.FireExit as exc:
        return int(exc.code or 0)
    except SystemExit as exc:  # a command that decided its own exit status (validate: 1 on a failed row)
        return int(exc.code or 0) if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:
        sys.stderr.write(f"{_PROG}: interrupted\n")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
