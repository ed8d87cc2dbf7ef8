"""One HDF5 file per run, written so that a kill at any moment loses no finished point.

The file holds the run's configuration and versions as root attributes, and one group per finished
record (``models/<name>`` for per-model data such as ``G_l``; ``points/<key>`` for the per-trial
accuracies of one campaign point, its plan and its prediction).

Durability: a finished record is first appended as one line to the journal ``<path>.journal`` (JSON,
arrays as base64 of their bytes, so exact), flushed and fsynced before :meth:`RunStore.put` returns; a
line cut off by a kill has no newline and is ignored. The HDF5 file itself is rewritten into
``<path>.tmp`` and renamed over ``<path>`` (an atomic rename) every ``checkpoint_s`` seconds and when the
run closes, after which the journal is dropped. Resuming reads the HDF5 file, then replays the journal.
Opening an existing file with a different configuration raises :class:`~wkbnoise.errors.StoreError` and
leaves the file alone.
"""

from __future__ import annotations

import base64
import json
import os
import time
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

    def __init__(self, path: str | os.PathLike, config: str, versions: Mapping | None = None, *,
                 checkpoint_s: float = 60.0, readonly: bool = False):
        self.path = Path(path)
        self.config = config
        self.versions = dict(versions or {})
        self.records: dict[str, tuple[dict, dict]] = {}
        self.checkpoint_s = float(checkpoint_s)
        self.journal = self.path.with_name(self.path.name + ".journal")
        tmp = self.path.with_name(self.path.name + ".tmp")
        if self.path.exists():
            self._load()
        elif self.journal.exists():
            self._check_journal_config()
        if tmp.exists() and not readonly:
            tmp.unlink()  # a write that was cut off; the renamed file is still whole
        self._replay()
        self._last_flush = time.monotonic()
        self._dirty = False

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

    @classmethod
    def read(cls, path: str | os.PathLike) -> RunStore:
        """Open a run (HDF5 file and/or journal) read-only, whatever its configuration."""
        path = Path(path)
        journal = path.with_name(path.name + ".journal")
        config = None
        if path.exists():
            try:
                with h5py.File(path, "r") as f:
                    config = f.attrs.get("config")
            except OSError as exc:
                raise StoreError(f"run={str(path)!r} is not an HDF5 file ({exc}).") from exc
        elif journal.exists():
            with open(journal, "rb") as fh:
                try:
                    config = json.loads(fh.readline()).get("config")
                except ValueError:
                    config = None
        if config is None:
            raise StoreError(f"run={str(path)!r} holds no wkbnoise run. Give the --out file of a campaign.")
        return cls(path, config, readonly=True)

    def _check_journal_config(self) -> None:
        with open(self.journal, "rb") as fh:
            first = fh.readline()
        try:
            head = json.loads(first)
        except ValueError:
            return
        if head.get("config") not in (None, self.config):
            diff = _first_difference(head.get("config"), self.config)
            raise StoreError(
                f"journal {str(self.journal)!r} belongs to a run with another configuration ({diff}); refusing to "
                "overwrite it. Re-run with the same flags to resume it, or give another --out path."
            )

    def _replay(self) -> None:
        if not self.journal.exists():
            return
        with open(self.journal, "rb") as fh:
            lines = fh.read().split(b"\n")
        for number, line in enumerate(lines[:-1], 1):  # the last piece has no newline: a line cut off by a kill
            if not line.strip():
                continue
            rec = self._journal_line(number, line)
            if rec is None:
                continue
            key, attrs, data = rec
            self.records[key] = (attrs, data)

    def _damaged(self, number: int, what: str) -> StoreError:
        return StoreError(f"journal {str(self.journal)!r} line {number} is damaged ({what}). Delete the journal "
                          f"(and {self.path.name!r} if it is damaged too) to start the run again, or give another "
                          f"--out path.")

    def _journal_line(self, number: int, line: bytes):
        """One journal line -> ``(key, attrs, data)``; ``None`` for the header line. Checks every field."""
        try:
            rec = json.loads(line)
        except ValueError:
            raise self._damaged(number, "not JSON") from None
        if not isinstance(rec, dict):
            raise self._damaged(number, "not a JSON object")
        if "config" in rec:
            if not isinstance(rec.get("versions", {}), dict):
                raise self._damaged(number, "versions is not an object")
            self.versions = {**rec.get("versions", {}), **self.versions}
            if rec["config"] != self.config:
                raise StoreError(f"journal {str(self.journal)!r} belongs to another configuration; move it away "
                                 "or give another --out path.")
            return None
        missing = [k for k in ("key", "attrs", "data") if k not in rec]
        if missing:
            raise self._damaged(number, f"no {', '.join(missing)} field")
        key, attrs, data = rec["key"], rec["attrs"], rec["data"]
        if not isinstance(key, str) or not key or key.startswith("/"):
            raise self._damaged(number, f"key {key!r} is not a record name")
        if not isinstance(attrs, dict) or not isinstance(data, dict):
            raise self._damaged(number, "attrs and data must be JSON objects")
        arrays = {}
        for name, v in data.items():
            if not isinstance(v, dict) or not {"dtype", "shape", "b64"} <= v.keys():
                raise self._damaged(number, f"array {name!r} lacks dtype, shape or b64")
            if not isinstance(v["dtype"], str):
                raise self._damaged(number, f"array {name!r} has dtype {v['dtype']!r}, not a NumPy dtype string")
            try:
                dtype = np.dtype(v["dtype"])
                raw = base64.b64decode(v["b64"], validate=True)
            except (TypeError, ValueError) as exc:
                raise self._damaged(number, f"array {name!r}: {' '.join(str(exc).split())}") from None
            shape = v["shape"]
            if dtype.kind not in "biuf" or not isinstance(shape, list) \
                    or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
                raise self._damaged(number, f"array {name!r} has dtype {v['dtype']!r} and shape {shape!r}")
            n = int(np.prod(shape, dtype=np.int64))
            if n * dtype.itemsize != len(raw):
                raise self._damaged(number, f"array {name!r} holds {len(raw)} bytes, not the {n * dtype.itemsize} of "
                                            f"shape {shape} and dtype {dtype}")
            arrays[name] = np.frombuffer(raw, dtype=dtype).reshape(shape)
        return key, attrs, arrays

    def check(self, schema: Mapping[str, tuple]) -> None:
        """Check every finished record against ``schema`` (key prefix -> fields it must hold); see :meth:`require`."""
        for key in self.records:
            for prefix, fields in schema.items():
                if key.startswith(prefix):
                    self.require(key, *fields)

    def require(self, key: str, *fields: str) -> tuple[dict, dict]:
        """``(attrs, data)`` of a record that must hold the data arrays ``fields``.

        Raises
        ------
        StoreError
            When a record read back from the run file lacks one of them (a damaged or foreign file).
        """
        attrs, data = self.records[key]
        lacking = [f for f in fields if f not in data and f not in attrs]
        if lacking:
            raise StoreError(f"run file {str(self.path)!r}: record {key!r} lacks {', '.join(lacking)}, so the file "
                             f"or its journal is damaged. Delete {self.path.name!r} (and its .journal) to start the "
                             f"run again, or give another --out path.")
        return attrs, data

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
        """Record a finished unit of work and make it durable (journal, fsync) before returning."""
        if not key or key.startswith("/") or "//" in key:
            raise StoreError(f"record key {key!r} must be a relative HDF5 path.")
        attrs = {k: _clean_attr(v) for k, v in (attrs or {}).items()}
        data = {k: np.ascontiguousarray(v) for k, v in (data or {}).items()}
        for k, v in data.items():
            if v.dtype.kind not in "biuf":
                raise StoreError(f"record {key!r}: data {k!r} has dtype {v.dtype}; store numbers only (text as attrs).")
        line = {"key": key, "attrs": {k: _jsonable(v) for k, v in attrs.items()},
                "data": {k: {"dtype": v.dtype.str, "shape": list(v.shape), "b64": base64.b64encode(v.tobytes()).decode()}
                         for k, v in data.items()}}
        new = not self.journal.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.journal, "ab") as fh:
            if new:
                fh.write(json.dumps({"config": self.config, "versions": self.versions}).encode() + b"\n")
            fh.write(json.dumps(line).encode() + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.records[key] = (line["attrs"], data)
        self._dirty = True
        if time.monotonic() - self._last_flush >= self.checkpoint_s:
            self.flush()

    def close(self) -> None:
        """Write the HDF5 file (if anything changed) and drop the journal."""
        if self._dirty or not self.path.exists():
            self.flush()

    def flush(self) -> None:
        """Write every record to ``<path>.tmp``, fsync it, rename it over the run file, drop the journal."""
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
        if self.journal.exists():
            self.journal.unlink()
        self._dirty = False
        self._last_flush = time.monotonic()


def _jsonable(v):
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v != v:
        return "nan"
    return v


def _first_difference(stored: str | None, wanted: str) -> str:
    try:
        a, b = json.loads(stored), json.loads(wanted)
    except (TypeError, ValueError):
        return "unreadable configuration"
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            return f"{k}: file has {a.get(k)!r}, requested {b.get(k)!r}"
    return "same keys, different text"
