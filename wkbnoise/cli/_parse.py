"""Command-line parsing and help pages, read from each command's signature and docstring.

Every token is checked against the command's signature before the command runs: an unknown flag, a stray
positional argument or a flag given twice is refused up front (:class:`UsageError`, one line, exit 2), with
a "did you mean" suggestion. Flags are written with hyphens (``--thickness-nm``; ``--thickness_nm`` is
accepted too), a switch is ``--json`` / ``--no-json``, and values are read as Python literals (``30``,
``1e-3``, ``tac,none``) except file paths, which stay text.

Positional arguments: a command whose first parameter is ``file`` or ``model`` takes it as an optional
positional argument (``eval FILE``, ``info FILE``); every other parameter is a flag.
"""

from __future__ import annotations

import difflib
import inspect
import re
import textwrap
from dataclasses import dataclass

from ..errors import InputError

__all__ = ["UsageError", "Parsed", "commands", "parse", "render_help", "render_overview"]

_PROG = "python -m wkbnoise"
_POSITIONAL_NAMES = ("file", "model")
#: parameters that name files or directories: their values are kept as typed, never read as literals
_PATH_PARAMS = {"file", "out", "plan_json", "inputs", "labels", "config", "docs", "model", "png", "src"}
_WIDTH = 100


class UsageError(InputError):
    """A command line that does not match the command: unknown flag, stray argument, missing value."""


@dataclass(frozen=True)
class Parsed:
    """The outcome of :func:`parse`: a command to call, or a help page to print."""

    command: str | None
    kwargs: dict
    help_text: str | None = None


def commands(cli_cls) -> dict:
    """Command name (hyphenated) -> unbound method, for every public method of the CLI class."""
    out = {}
    for name in sorted(dir(cli_cls)):
        if name.startswith("_"):
            continue
        fn = getattr(cli_cls, name)
        if inspect.isfunction(fn):
            out[name.replace("_", "-")] = fn
    return out


def _params(fn) -> list[inspect.Parameter]:
    return [p for p in inspect.signature(fn).parameters.values() if p.name != "self"]


def _positionals(fn) -> tuple[str, ...]:
    ps = _params(fn)
    required = tuple(p.name for p in ps if p.default is inspect.Parameter.empty)
    if required:
        return required
    return (ps[0].name,) if ps and ps[0].name in _POSITIONAL_NAMES else ()


def _is_switch(p: inspect.Parameter) -> bool:
    return isinstance(p.default, bool)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else "."


def _value(name: str, text: str):
    if name in _PATH_PARAMS:
        return text
    from fire.parser import DefaultParseValue

    return DefaultParseValue(text)


_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def parse(cli_cls, argv) -> Parsed:
    """Check ``argv`` against the CLI's commands and return what to run (or a help page).

    Raises
    ------
    UsageError
        On an unknown command or flag, a stray positional argument, a flag given twice or without a value.
    """
    argv = [str(a) for a in argv]
    cmds = commands(cli_cls)
    if not argv or argv[0] in ("-h", "--help", "help"):
        if len(argv) > 1 and argv[0] == "help":
            return parse(cli_cls, [argv[1], "--help"])
        return Parsed(None, {}, render_overview(cli_cls))
    word = argv[0]
    name = word.replace("_", "-")
    if name not in cmds:
        close = difflib.get_close_matches(name, list(cmds), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UsageError(f"unknown command {word!r}{hint}. Commands: {', '.join(cmds)}; "
                         f"run `{_PROG} --help` for what each does.")
    fn = cmds[name]
    if any(a in ("-h", "--help") for a in argv[1:]):
        return Parsed(name, {}, render_help(name, fn))
    params = {p.name: p for p in _params(fn)}
    flags = {_flag(n): n for n in params}
    positional = list(_positionals(fn))
    see = f"Run `{_PROG} {name} --help` for the accepted flags."
    kwargs: dict = {}
    rest = argv[1:]
    i = 0
    only_positional = False
    last_switch = None
    while i < len(rest):
        tok = rest[i]
        i += 1
        if tok == "--" and not only_positional:
            only_positional = True
            continue
        if not only_positional and tok.startswith("--"):
            key, eq, text = tok[2:].partition("=")
            pname = key.replace("-", "_")
            negated = False
            if pname not in params and pname.startswith("no") and pname[2:].lstrip("_") in params:
                cand = pname[2:].lstrip("_")
                if _is_switch(params[cand]):
                    pname, negated = cand, True
            if pname not in params:
                raise UsageError(f"unknown flag --{key} for `{name}`{_suggest(_flag(pname), flags)} {see}")
            if pname in kwargs:
                raise UsageError(f"{_flag(pname)} is given twice; give it once. {see}")
            p = params[pname]
            if _is_switch(p):
                if negated and eq:
                    raise UsageError(f"--{key} takes no value; write {_flag(pname)} or --no-{pname.replace('_', '-')}.")
                if eq:
                    low = text.strip().lower()
                    if low not in _TRUE | _FALSE:
                        raise UsageError(f"--{key}={text!r} is a switch: write {_flag(pname)} or "
                                         f"--no-{pname.replace('_', '-')}, or --{key}=true/false.")
                    kwargs[pname] = low in _TRUE
                else:
                    kwargs[pname] = not negated
                    last_switch = tok
                continue
            if not eq:
                if i >= len(rest) or rest[i].startswith("--"):
                    raise UsageError(f"{_flag(pname)} needs a value, e.g. {_flag(pname)} VALUE. {see}")
                text = rest[i]
                i += 1
            kwargs[pname] = _value(pname, text)
            continue
        if not only_positional and re.fullmatch(r"-[A-Za-z].*", tok):
            raise UsageError(f"unknown option {tok!r} for `{name}`: flags are written with two hyphens "
                             f"(--name VALUE). {see}")
        if not positional and last_switch is not None and i >= 2 and rest[i - 2] == last_switch:
            raise UsageError(f"unexpected argument {tok!r} after the switch {last_switch}: a switch takes no value; "
                             f"write {last_switch} alone (or {last_switch}=false). {see}")
        if not positional:
            takes = f"`{name}` takes no positional argument" if not _positionals(fn) else \
                f"`{name}` takes only {' '.join(p.upper() for p in _positionals(fn))}"
            raise UsageError(f"unexpected argument {tok!r}: {takes}; flags are written --name VALUE. {see}")
        pname = positional.pop(0)
        kwargs[pname] = tok if pname in _PATH_PARAMS else _value(pname, tok)
    missing = [p for p in params.values() if p.default is inspect.Parameter.empty and p.name not in kwargs]
    if missing:
        raise UsageError(f"`{name}` needs {' '.join(p.name.upper() for p in missing)}. {see}")
    return Parsed(name, kwargs)


# -- help pages -----------------------------------------------------------------------------------------
def _split_doc(fn) -> tuple[str, str, dict]:
    """``(summary, body, {param: description})`` of a Google-style docstring (``Args:`` section)."""
    doc = inspect.cleandoc(fn.__doc__ or "")
    head, _, args = doc.partition("\nArgs:\n")
    paras = [p.strip() for p in head.split("\n\n") if p.strip()]
    summary = " ".join(paras[0].split()) if paras else ""
    body = "\n\n".join(" ".join(p.split()) for p in paras[1:])
    described: dict[str, str] = {}
    current = None
    for line in args.splitlines():
        m = re.match(r"^\s{0,8}(\w+):\s*(.*)$", line)
        if m and m.group(1) in {p.name for p in _params(fn)}:
            current = m.group(1)
            described[current] = m.group(2).strip()
        elif current and line.strip():
            described[current] += " " + line.strip()
        elif not line.strip():
            current = None
    return summary, body, described


def _metavar(p: inspect.Parameter) -> str:
    if p.name in _PATH_PARAMS:
        return "PATH"
    if isinstance(p.default, int) and not isinstance(p.default, bool):
        return "N"
    if isinstance(p.default, float):
        return "X"
    return "VALUE"


def _rows(rows: list[tuple[str, str]]) -> list[str]:
    left = min(max((len(a) for a, _ in rows), default=0), 28) + 4
    out = []
    for a, b in rows:
        wrapped = textwrap.wrap(b, _WIDTH - left) or [""]
        if len(a) + 4 > left:
            out.append("  " + a)
            out.extend(" " * left + w for w in wrapped)
        else:
            out.append(f"  {a:<{left - 2}}{wrapped[0]}")
            out.extend(" " * left + w for w in wrapped[1:])
    return out


def render_help(name: str, fn) -> str:
    """The help page of one command: usage, what it does, its arguments and flags."""
    summary, body, described = _split_doc(fn)
    pos = _positionals(fn)
    usage = f"usage: {_PROG} {name}" + "".join(f" [{p.upper()}]" for p in pos) + " [--flags]"
    lines = [usage, "", *textwrap.wrap(summary, _WIDTH)]
    for para in body.split("\n\n") if body else []:
        lines += ["", *textwrap.wrap(para, _WIDTH)]
    params = _params(fn)
    if pos:
        lines += ["", "arguments:"]
        lines += _rows([(p.upper(), described.get(p, "")) for p in pos])
    rows = []
    for p in params:
        if p.name in pos:
            continue
        flag = _flag(p.name) if _is_switch(p) else f"{_flag(p.name)} {_metavar(p)}"
        rows.append((flag, described.get(p.name, "")))
    rows.append(("-h, --help", "show this page"))
    lines += ["", "flags:", *_rows(rows)]
    return "\n".join(lines)


def render_overview(cli_cls) -> str:
    """The top-level help page: what wkbnoise is and one line per command."""
    doc = inspect.cleandoc(cli_cls.__doc__ or "")
    lines = [f"usage: {_PROG} COMMAND [ARGS] [--flags]", ""]
    lines += [textwrap.fill(" ".join(p.split()), _WIDTH) for p in doc.split("\n\n") if p.strip()][:1]
    rows = []
    for name, fn in commands(cli_cls).items():
        pos = "".join(f" [{p.upper()}]" for p in _positionals(fn))
        rows.append((name + pos, _split_doc(fn)[0]))
    lines += ["", "commands:", *_rows(rows), ""]
    lines += [textwrap.fill(f"Run `{_PROG} COMMAND --help` for a command's flags. Every command takes --json "
                            "(one JSON object on stdout). A mistake prints one line on stderr and exits with "
                            "status 2, before any work is done.", _WIDTH)]
    return "\n".join(lines)
