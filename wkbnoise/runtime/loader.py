"""safetensors -> float32 arrays + metadata, checked before a single tensor is read.

The loader reads the 8-byte little-endian header length and the JSON header first (as tinygrad's
``safe_load_metadata`` does), checks every entry (dtype, shape, byte range inside the file), and only then
reads the tensors with the ``safetensors`` package (NumPy framework). F16 and BF16 tensors are widened to
float32 (safetensors' NumPy binding has no BF16, so those bytes are widened here by hand); the integer
buffers that PyTorch and Hugging Face save beside the weights (``num_batches_tracked``,
``embeddings.position_ids``, ...) are recognised and skipped. Pickle checkpoints are refused, never opened.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ModelFileError

__all__ = ["SafetensorsFile", "read_header", "read_safetensors", "INTEGER_BUFFER_SUFFIXES"]

#: safetensors dtype name -> (NumPy dtype or None for BF16, bytes per element, is floating point)
_DTYPES = {
    "F64": (np.float64, 8, True),
    "F32": (np.float32, 4, True),
    "F16": (np.float16, 2, True),
    "BF16": (None, 2, True),
    "I64": (np.int64, 8, False),
    "I32": (np.int32, 4, False),
    "I16": (np.int16, 2, False),
    "I8": (np.int8, 1, False),
    "U64": (np.uint64, 8, False),
    "U32": (np.uint32, 4, False),
    "U16": (np.uint16, 2, False),
    "U8": (np.uint8, 1, False),
    "BOOL": (np.bool_, 1, False),
}

#: integer buffers saved by PyTorch / Hugging Face next to the weights; they carry no weight and are skipped.
INTEGER_BUFFER_SUFFIXES = ("num_batches_tracked", "position_ids", "token_type_ids")

_MAX_HEADER_BYTES = 100 * 1024 * 1024
_PICKLE_SUFFIXES = {".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle", ".tar"}
_CONVERT_HINT = (
    "Convert it once where PyTorch is installed: "
    "`import torch; from safetensors.torch import save_file; "
    "save_file({k: v.contiguous() for k, v in torch.load(PATH, weights_only=True).items()}, 'model.safetensors', "
    "metadata={'format': 'pt'})` (Hugging Face: `model.save_pretrained(DIR, safe_serialization=True)`)"
)


@dataclass(frozen=True)
class SafetensorsFile:
    """A checked safetensors file: its float32 tensors, the skipped integer buffers and its metadata.

    Attributes
    ----------
    path : Path
        The file.
    tensors : dict of str to ndarray
        Floating-point tensors, widened (F16, BF16) or narrowed (F64) to float32, read-only, keyed by their
        names in the file (PyTorch / Hugging Face names, unchanged).
    dtypes : dict of str to str
        The stored safetensors dtype of each tensor in ``tensors`` (``"F32"``, ``"F16"``, ``"BF16"``, ...).
    skipped : tuple of str
        Integer buffers recognised and skipped (``num_batches_tracked``, ``position_ids``).
    metadata : dict of str to str
        The ``__metadata__`` of the header (empty when absent).
    """

    path: Path
    tensors: dict
    dtypes: dict
    skipped: tuple
    metadata: dict = field(default_factory=dict)


def as_path(path) -> Path:
    """``path`` as a :class:`~pathlib.Path`, refusing what is not a file name (None, a number, ...)."""
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str | os.PathLike) or not str(path):
        raise ModelFileError(f"path={path!r} is not a file name. Give the path of a .safetensors file.")
    return Path(path)


def _refuse_pickle(path: Path, why: str) -> ModelFileError:
    return ModelFileError(
        f"path={str(path)!r} is {why}, which is a pickle checkpoint: wkbnoise never unpickles (it can run "
        f"arbitrary code). {_CONVERT_HINT}."
    )


def read_header(path) -> tuple[dict, dict, int]:
    """Read and check the JSON header of a safetensors file without reading any tensor.

    Parameters
    ----------
    path : str or Path
        A ``.safetensors`` file.

    Returns
    -------
    entries : dict
        Tensor name -> ``{"dtype", "shape", "data_offsets"}`` as stored (``__metadata__`` removed).
    metadata : dict
        ``__metadata__`` (str -> str), empty when absent.
    data_start : int
        Byte offset of the data buffer [bytes].

    Raises
    ------
    ModelFileError
        If the file is missing, a pickle checkpoint, not safetensors, truncated, or its header is inconsistent.
    """
    path = as_path(path)
    if not path.is_file():
        raise ModelFileError(f"path={str(path)!r} does not exist or is not a file. Give a .safetensors file.")
    if path.suffix.lower() in _PICKLE_SUFFIXES:
        raise _refuse_pickle(path, f"a {path.suffix} file")
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise ModelFileError(
                f"path={str(path)!r} has {size} bytes, fewer than the 8-byte header length of a safetensors "
                f"file: it is not safetensors or it is truncated. Re-export it with safetensors.save_file."
            )
        (n_header,) = struct.unpack("<Q", head)
        if n_header > min(_MAX_HEADER_BYTES, size - 8):
            if head[:4] == b"PK\x03\x04" or (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04",
                                                                                  b"\x05")):
                raise _refuse_pickle(path, "a zip/pickle archive (torch.save format)")
            raise ModelFileError(
                f"path={str(path)!r}: header length {n_header} bytes does not fit in the {size}-byte file: it is "
                f"not safetensors or it is truncated. Re-export it with safetensors.save_file."
            )
        raw = fh.read(n_header)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelFileError(
            f"path={str(path)!r}: the header is not JSON, so this is not a safetensors file. "
            f"Re-export the weights with safetensors.save_file."
        ) from None
    if not isinstance(header, dict):
        raise ModelFileError(f"path={str(path)!r}: the header is not a JSON object. Re-export with safetensors.")
    metadata = header.pop("__metadata__", None)
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ModelFileError(f"path={str(path)!r}: __metadata__ must map str -> str. Re-export with safetensors.")
    data_start = 8 + n_header
    _check_entries(path, header, size - data_start)
    return header, dict(metadata), data_start


def _is_count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _check_entries(path: Path, header: dict, data_len: int) -> None:
    """Check every tensor entry (dtype, shape, offsets) and that the offsets tile the data buffer exactly."""
    fix = "Re-export the file with safetensors.save_file."
    spans = []
    for name, entry in header.items():
        where = f"path={str(path)!r}: tensor {name!r}"
        if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= entry.keys():
            raise ModelFileError(f"{where} has a malformed header entry {entry!r} (it needs dtype, shape and "
                                 f"data_offsets). {fix}")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(dtype, str) or dtype not in _DTYPES:
            raise ModelFileError(f"{where} has dtype {dtype!r}; the runtime reads {', '.join(_DTYPES)}. Cast it "
                                 f"to float32 (or float16) before saving.")
        if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
            raise ModelFileError(f"{where} has shape {shape!r}; a shape is a list of integers >= 0. {fix}")
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_count(o) for o in offsets) \
                or offsets[0] > offsets[1]:
            raise ModelFileError(f"{where} has data_offsets {offsets!r}; they must be two integers [start, end] "
                                 f"with 0 <= start <= end. {fix}")
        start, end = offsets
        n = int(np.prod(shape, dtype=np.int64)) if len(shape) < 64 and all(d < 2**62 for d in shape) else -1
        if end > data_len:
            raise ModelFileError(
                f"path={str(path)!r} is truncated: tensor {name!r} ends at byte {end} of the data buffer, which "
                f"has only {data_len} bytes. Copy or download the file again."
            )
        if n < 0 or end - start != n * _DTYPES[dtype][1]:
            raise ModelFileError(
                f"{where} of shape {shape} and dtype {dtype} needs {max(n, 0) * _DTYPES[dtype][1]} bytes but its "
                f"offsets {offsets} span {end - start}. {fix}"
            )
        spans.append((start, end, name))
    at = 0
    for start, end, name in sorted(spans):
        if start < at:
            raise ModelFileError(f"path={str(path)!r}: tensor {name!r} overlaps the tensor before it (bytes {start}-"
                                 f"{end}, the previous one ends at {at}). {fix}")
        if start > at:
            raise ModelFileError(f"path={str(path)!r}: bytes {at}-{start} of the data buffer belong to no tensor "
                                 f"(a gap before {name!r}). {fix}")
        at = end
    if at != data_len:
        raise ModelFileError(f"path={str(path)!r}: the tensors cover {at} of the {data_len} bytes of the data "
                             f"buffer; the rest belongs to no tensor. {fix}")


_SAFETENSORS_MESSAGES = {
    "invalid offset": "a tensor's data_offsets do not follow the previous tensor's",
    "not fully covered": "part of the data buffer belongs to no tensor",
    "expected usize": "a shape or offset is not a non-negative integer",
    "header too large": "the header length is larger than safetensors allows",
    "invalid header": "the header is not valid safetensors JSON",
    "metadata": "the header's metadata is inconsistent",
}


def _explain(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    for key, meaning in _SAFETENSORS_MESSAGES.items():
        if key in text.lower():
            return f"{meaning}: {text}"
    return text


def _is_integer_buffer(name: str) -> bool:
    return name.rsplit(".", 1)[-1] in INTEGER_BUFFER_SUFFIXES


def read_safetensors(path) -> SafetensorsFile:
    """Read a checked safetensors file into float32 arrays.

    Parameters
    ----------
    path : str or Path
        A ``.safetensors`` file.

    Returns
    -------
    SafetensorsFile
        Float32 tensors (read-only), stored dtypes, skipped integer buffers and metadata.

    Raises
    ------
    ModelFileError
        On any defect found by :func:`read_header`, or an integer tensor that is not a known buffer.
    """
    path = as_path(path)
    header, metadata, data_start = read_header(path)
    tensors, dtypes, skipped = {}, {}, []
    bf16 = []
    for name, entry in header.items():
        np_dtype, _, is_float = _DTYPES[entry["dtype"]]
        if not is_float:
            if _is_integer_buffer(name):
                skipped.append(name)
                continue
            raise ModelFileError(
                f"path={str(path)!r}: tensor {name!r} is {entry['dtype']}, an integer tensor where a weight "
                f"belongs. Save the float weights (before any integer quantization) as float32."
            )
        dtypes[name] = entry["dtype"]
        if np_dtype is None:
            bf16.append(name)
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="np") as fh:
            for name in dtypes:
                if name in bf16:
                    continue
                arr = fh.get_tensor(name)
                arr = np.ascontiguousarray(arr, dtype=np.float32)
                arr.setflags(write=False)
                tensors[name] = arr
    except SafetensorError as exc:
        raise ModelFileError(f"path={str(path)!r} could not be read by safetensors ({_explain(exc)}). Re-export "
                             f"the file with safetensors.save_file, or copy it again.") from None
    if bf16:
        with path.open("rb") as fh:
            for name in bf16:
                start, end = header[name]["data_offsets"]
                fh.seek(data_start + start)
                raw = np.frombuffer(fh.read(end - start), dtype="<u2")
                arr = (raw.astype(np.uint32) << np.uint32(16)).view(np.float32).reshape(header[name]["shape"])
                arr.setflags(write=False)
                tensors[name] = arr
    tensors = {name: tensors[name] for name in dtypes}  # file order
    for name, arr in tensors.items():
        bad = ~np.isfinite(arr)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ModelFileError(
                f"path={str(path)!r}: tensor {name!r} holds {int(bad.sum())} non-finite (NaN or inf) values (first at index "
                f"{first}, stored as {dtypes[name]}); a network with them computes nothing meaningful. Re-export "
                f"finite weights (check the training for divergence, or a float16 overflow)."
            )
    return SafetensorsFile(path, tensors, dtypes, tuple(skipped), metadata)
