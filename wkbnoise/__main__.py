"""``python -m wkbnoise``: the commands of :class:`wkbnoise.cli.Cli`, with one-line errors and exit code 2.

The command line is checked against the command's signature before the command runs
(:func:`wkbnoise.cli._parse.parse`), so a misspelled flag or a stray argument is refused before any work.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .cli import Cli
from .cli._parse import parse
from .errors import WkbnoiseError

__all__ = ["main"]

_PROG = "wkbnoise"


def _error(exc: BaseException) -> int:
    message = " ".join(str(exc).split())
    sys.stderr.write(f"{_PROG}: error: {message}\n")
    sys.stderr.flush()
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return the process exit code (0 ok, 1 a check failed, 2 a user mistake)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        parsed = parse(Cli, args)
        if parsed.help_text is not None:
            sys.stdout.write(parsed.help_text.rstrip("\n") + "\n")
            return 0
        getattr(Cli(), parsed.command.replace("-", "_"))(**parsed.kwargs)
    except WkbnoiseError as exc:
        return _error(exc)
    except SystemExit as exc:  # a command that decided its own exit status (validate: 1 on a failed row)
        return int(exc.code or 0) if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:
        sys.stderr.write(f"{_PROG}: interrupted\n")
        return 130
    except BrokenPipeError:  # `... | head`: the reader left
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
