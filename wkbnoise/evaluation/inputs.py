"""A user's test inputs and labels (safetensors files), checked before a campaign spends any time on them.

``images``: uint8 images ``(N, C, H, W)`` (preprocessed by the model) or float model inputs, every value
finite, ``N >= 1``. ``labels``: class indices ``(N,)``, integers (integer-valued floats are accepted),
``0 <= label < number of classes``. A file without the expected tensor is refused, naming the tensors
it has; nothing is guessed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError, WkbnoiseError

__all__ = ["read_inputs", "read_labels", "check_images", "check_labels", "count_images"]


def _tensors(path, flag: str, wanted: str, what: str) -> dict:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    from ..runtime.loader import read_header

    p = Path(str(path))
    try:
        read_header(p)
        tensors = load_file(str(p))
    except (WkbnoiseError, SafetensorError, OSError, ValueError, TypeError) as exc:
        detail = " ".join(str(exc).split())
        raise InputError(f"--{flag}={str(p)!r} cannot be read as safetensors ({detail}). Give a safetensors "
                         f"file with {what}.") from None
    if wanted not in tensors:
        have = ", ".join(repr(k) for k in sorted(tensors)) or "no tensors"
        raise InputError(f"--{flag}={str(p)!r} has no {wanted!r} tensor (it has {have}). Save {what} under the "
                         f"name {wanted!r}.")
    return tensors


def check_images(x, where: str = "images") -> np.ndarray:
    """Check a batch of model inputs: at least one, uint8 or float, every value finite.

    Raises
    ------
    InputError
        On zero images, a scalar or 1-D array, a dtype that is neither uint8 nor float, or a NaN/inf value.
    """
    x = np.asarray(x)
    if x.ndim < 2:
        raise InputError(f"{where} has shape {x.shape}; it must be (N, ...) with one row per input, e.g. "
                         f"uint8 (N, C, H, W).")
    if len(x) == 0:
        raise InputError(f"{where} holds 0 inputs (shape {x.shape}); give at least one.")
    if x.dtype != np.uint8 and x.dtype.kind != "f":
        raise InputError(f"{where} has dtype {x.dtype}; give uint8 images (N, C, H, W) or float32 model inputs.")
    if x.dtype.kind == "f":
        bad = ~np.isfinite(x)
        if bad.any():
            first = int(np.argmax(bad.reshape(len(x), -1).any(axis=1)))
            raise InputError(f"{where} holds {int(bad.sum())} NaN or inf values (first in input {first}); every "
                             f"input value must be finite. Fix or drop those inputs.")
    return x


def check_labels(labels, n_images: int, n_classes: int | None = None, where: str = "labels") -> np.ndarray:
    """Check class labels: one integer per image, ``0 <= label < n_classes``; returns them as int64.

    Raises
    ------
    InputError
        On a shape other than ``(n_images,)``, a non-integer value, or a label outside the classes.
    """
    y = np.asarray(labels)
    if y.ndim != 1:
        raise InputError(f"{where} has shape {y.shape}; it must be 1-D, one class index per image.")
    if len(y) != n_images:
        raise InputError(f"{where} has {len(y)} entries for {n_images} images: give one label per image.")
    if y.dtype.kind == "f":
        ok = np.isfinite(y) & (y == np.round(y))
        if not ok.all():
            i = int(np.argmin(ok))
            raise InputError(f"{where}[{i}]={y[i]!r} is not an integer; labels are class indices 0, 1, 2, ...")
    elif y.dtype.kind not in "iub":
        raise InputError(f"{where} has dtype {y.dtype}; labels are integer class indices.")
    if y.dtype.kind == "b":
        raise InputError(f"{where} has dtype bool; labels are integer class indices 0, 1, 2, ...")
    y = y.astype(np.int64)
    if len(y) and y.min() < 0:
        i = int(np.argmin(y))
        raise InputError(f"{where}[{i}]={int(y[i])} is negative; labels are class indices 0, 1, 2, ...")
    if n_classes is not None and len(y) and y.max() >= n_classes:
        i = int(np.argmax(y))
        raise InputError(f"{where}[{i}]={int(y[i])} is not a class of a model with {n_classes} outputs; labels "
                         f"must be in 0..{n_classes - 1}.")
    return y


def read_inputs(path) -> np.ndarray:
    """The checked ``images`` tensor of a ``--inputs`` file."""
    x = _tensors(path, "inputs", "images", "an 'images' tensor (uint8 N,C,H,W or float32 model inputs)")["images"]
    return check_images(x, where=f"--inputs={str(path)!r}")


def read_labels(path, n_images: int) -> np.ndarray:
    """The checked ``labels`` tensor of a ``--labels`` file (``n_images`` entries), as int64."""
    y = _tensors(path, "labels", "labels", "a 'labels' tensor of class indices (N,)")["labels"]
    return check_labels(y, n_images, where=f"--labels={str(path)!r}")


def count_images(path) -> int | None:
    """Rows of the ``images`` tensor of ``path`` from its header alone; ``None`` when there is none to count."""
    from ..runtime.loader import read_header

    try:
        entry = read_header(path)[0].get("images")
    except WkbnoiseError:
        return None  # the readers say what is wrong with the file
    shape = entry.get("shape") if isinstance(entry, dict) else None
    return int(shape[0]) if shape else None
