"""One HDF5 file per run, written so that a kill at any moment loses no finished point.

The file holds the run's configuration and versions as root attributes, and one group per finished
record (``models/<name>`` for per-model data such as ``G_l``; ``points/<key>`` for the per-trial
accuracies of one campaign point, its plan and its prediction). Each record is written by rewriting the
whole (small) file into ``<path>.tmp``, flushing it to disk and renaming it over ``<path>``: a rename is
atomic, so the file on disk is always a complete run of finished records. Opening an existing file with
a different configuration raises :class:`~wkbnoise.errors.StoreError` and leaves the file alone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import h5py
import numpy as np

from ..errors import StoreError

__all__ = ["RunStore", "FORMAT"]

FORMAT = "wkbnoise.run/1"


def _clean_attr(v):
    if isinstance(v, dict | list | tuple):
        return json.dumps(v, sort_keys=True, default=float)
    if v is None:
        return "null"
    return v


class RunStore:
    """An HDF5 run file keyed by record path, resumable.

    Parameters
    ----------
    path : str or Path
        The run file (``.h5``). Created when absent.
    config : str
        The run's configuration as canonical JSON; compared on reopen.
    versions : mapping, optional
        Versions and threading facts to record (not compared).

    Raises
    ------
    StoreError
        If ``path`` holds a run of another configuration, or is not a wkbnoise run file.
    """

    def __init__(self, path: str | os.PathLike, config: str, versions: Mapping | None = None):
        self.path = Path(path)
        self.config = config
        self.versions = dict(versions or {})
        self.records: dict[str, tuple[dict, dict]] = {}
        tmp = self.path.with_name(self.path.name + ".tmp")
        if tmp.exists():
            tmp.unlink()  # a write that was cut off; the renamed file is still whole
        if self.path.exists():
            self._load()

    # -- reading ---------------------------------------------------------------------------------------
    def _load(self) -> None:
        try:
            f = h5py.File(self.path, "r")
        except OSError as exc:
            raise StoreError(f"out={str(self.path)!r} exists but is not an HDF5 file ({exc}). "
                             "Give another --out path or move the file away.") from exc
        with f:
            if f.attrs.get("format") != FORMAT:
                raise StoreError(f"out={str(self.path)!r} is not a wkbnoise run file (no format={FORMAT!r}). "
                                 "Give another --out path.")
            stored = f.attrs.get("config")
            if stored != self.config:
                diff = _first_difference(stored, self.config)
                raise StoreError(
                    f"out={str(self.path)!r} holds a run with another configuration ({diff}); refusing to "
                    "overwrite it. Re-run with the same flags to resume it, or give another --out path."
                )
            stored_versions = json.loads(f.attrs.get("versions", "{}"))
            self.versions = {**stored_versions, **{k: v for k, v in self.versions.items() if k not in stored_versions}}

            def visit(name, obj):
                if isinstance(obj, h5py.Group) and obj.attrs.get("_record", False):
                    attrs = {k: v for k, v in obj.attrs.items() if k != "_record"}
                    data = {k: obj[k][()] for k in obj if isinstance(obj[k], h5py.Dataset)}
                    self.records[name] = (attrs, data)

            f.visititems(visit)

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def get(self, key: str) -> tuple[dict, dict]:
        """``(attrs, data)`` of a finished record."""
        return self.records[key]

    def keys(self, prefix: str = "") -> list[str]:
        """Finished record keys under ``prefix``, sorted."""
        return sorted(k for k in self.records if k.startswith(prefix))

    # -- writing ---------------------------------------------------------------------------------------
    def put(self, key: str, attrs: Mapping | None = None, data: Mapping | None = None) -> None:
        """Record a finished unit of work and make it durable before returning."""
        if not key or key.startswith("/") or "//" in key:
            raise StoreError(f"record key {key!r} must be a relative HDF5 path.")
        self.records[key] = ({k: _clean_attr(v) for k, v in (attrs or {}).items()},
                             {k: np.asarray(v) for k, v in (data or {}).items()})
        self.flush()

    def flush(self) -> None:
        """Write every record to ``<path>.tmp``, fsync it, and rename it over the run file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with h5py.File(tmp, "w", track_order=True) as f:
            f.attrs["format"] = FORMAT
            f.attrs["config"] = self.config
            f.attrs["versions"] = json.dumps(self.versions, sort_keys=True)
            for key in sorted(self.records):
                attrs, data = self.records[key]
                g = f.require_group(key)
                g.attrs["_record"] = True
                for k, v in attrs.items():
                    g.attrs[k] = v
                for k, v in data.items():
                    if v.dtype.kind == "U":
                        v = v.astype(h5py.string_dtype())
                    g.create_dataset(k, data=v)
            f.flush()
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        try:
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError:  # pragma: no cover - platforms without directory fsync
            pass


def _first_difference(stored: str | None, wanted: str) -> str:
    try:
        a, b = json.loads(stored), json.loads(wanted)
    except (TypeError, ValueError):
        return "unreadable configuration"
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            return f"{k}: file has {a.get(k)!r}, requested {b.get(k)!r}"
    return "same keys, different text"
