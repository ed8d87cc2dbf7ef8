"""Shared helpers of the command-line layer: flag checking and output (text or one JSON object)."""

from __future__ import annotations

import json as _json
import math
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["emit", "flag_float", "flag_int", "flag_choice", "flag_list", "flag_bool", "to_jsonable", "flag_out_file",
           "flag_out_dir"]


def to_jsonable(obj: Any) -> Any:
    """Convert NumPy scalars/arrays, tuples and non-finite floats into plain JSON values."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating | float):
        v = float(obj)
        return v if math.isfinite(v) else None
    return obj


def emit(payload: dict, text: str, as_json: bool) -> None:
    """Print ``text`` for a person, or ``payload`` as one JSON object on stdout when ``as_json``."""
    if as_json:
        sys.stdout.write(_json.dumps(to_jsonable(payload), sort_keys=False) + "\n")
    else:
        sys.stdout.write(text.rstrip("\n") + "\n")
    sys.stdout.flush()


def flag_float(value: Any, flag: str, *, low: float | None = None, high: float | None = None,
               low_open: bool = False, high_open: bool = False) -> float:
    """Check that a flag is a finite number within the given bounds and return it as float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"--{flag}={value!r} must be a number.")
    v = float(value)
    if not math.isfinite(v):
        raise InputError(f"--{flag}={value!r} must be a finite number.")
    if low is not None and (v < low or (low_open and v == low)):
        raise InputError(f"--{flag}={v:g} must be {'>' if low_open else '>='} {low:g}.")
    if high is not None and (v > high or (high_open and v == high)):
        raise InputError(f"--{flag}={v:g} must be {'<' if high_open else '<='} {high:g}.")
    return v


def flag_int(value: Any, flag: str, *, low: int | None = None, high: int | None = None) -> int:
    """Check that a flag is an integer (``1e6`` counts as one) within the given bounds."""
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"--{flag}={value!r} must be an integer.")
    if low is not None and value < low:
        raise InputError(f"--{flag}={value} must be >= {low}.")
    if high is not None and value > high:
        raise InputError(f"--{flag}={value} must be <= {high}.")
    return int(value)


def flag_choice(value: Any, flag: str, choices: Sequence[str]) -> str:
    """Check that a flag is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise InputError(f"--{flag}={value!r} must be one of {', '.join(choices)}.")
    return value


def flag_bool(value: Any, flag: str) -> bool:
    """Check a boolean switch (``--flag`` / ``--noflag``)."""
    if not isinstance(value, bool):
        raise InputError(f"--{flag}={value!r} is a switch: write --{flag} or leave it out.")
    return value


def flag_list(value: Any, flag: str) -> list:
    """A comma-separated flag (``--methods tac,none``), which fire hands over as a str, tuple or list."""
    if value is None:
        return []
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        items = [value]
    if not items:
        raise InputError(f"--{flag} is empty: give a comma-separated list.")
    return items


def _can_create_in(folder: Path) -> bool:
    """Whether a file can be created in ``folder`` (tried with a temporary file, removed at once)."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".wkbnoise-probe-"):
            pass
    except OSError:
        return False
    return True


def flag_out_file(value: Any, flag: str) -> Path:
    """Check, before any work, that the output file of ``--flag`` can be written; nothing is created.

    The folder must exist and accept new files; an existing path must be a file that can be overwritten.
    """
    if not isinstance(value, str | os.PathLike) or not str(value).strip():
        raise InputError(f"--{flag}={value!r} must be a file path.")
    path = Path(str(value)).expanduser()
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise InputError(f"--{flag}={str(value)!r} is a directory; give a file path inside it, e.g. "
                         f"--{flag} {os.path.join(str(value), 'run.h5' if flag == 'out' else 'plan.json')}.")
    if not parent.exists():
        raise InputError(f"--{flag}={str(value)!r}: the folder {str(parent)!r} does not exist. Create it first or "
                         f"give another path.")
    if not parent.is_dir():
        raise InputError(f"--{flag}={str(value)!r}: {str(parent)!r} is a file, not a folder. Give a path inside a "
                         f"folder.")
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"--{flag}={str(value)!r} exists and cannot be overwritten. Give another path.")
    if not _can_create_in(parent):
        raise InputError(f"--{flag}={str(value)!r}: files cannot be created in {str(parent)!r} (no permission or "
                         f"a read-only file system). Give a path in a folder you can write.")
    return path


def flag_out_dir(value: Any, flag: str) -> Path:
    """Check, before any work, that ``--flag`` names a folder that exists or can be made, and accepts files."""
    if not isinstance(value, str | os.PathLike) or not str(value).strip():
        raise InputError(f"--{flag}={value!r} must be a folder path.")
    path = Path(str(value)).expanduser()
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(f"--{flag}={str(value)!r}: {str(probe)!r} is a file, not a folder. Give a folder path.")
    if not _can_create_in(probe):
        raise InputError(f"--{flag}={str(value)!r}: files cannot be created in {str(probe)!r} (no permission or a "
                         f"read-only file system). Give a folder you can write.")
    return path
