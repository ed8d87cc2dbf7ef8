"""What ``eval`` reads besides the weights: the model path (a file or a Hugging Face folder) and the
``--inputs`` / ``--labels`` safetensors files, each checked with a one-line error before any work.

An inputs file holds tensors named after the model's inputs: ``images`` for a classifier (uint8 pixels
(N, C, H, W) or (N, H, W), or float32 model inputs (N, C, H, W)); ``input_ids`` and optionally
``attention_mask`` / ``token_type_ids`` for an encoder (int64 or int32 (N, T), checked by
:func:`wkbnoise.text.token_batch`). A labels file holds ``labels``: integer class indices (N,).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError, ModelFileError

__all__ = ["read_tensors", "read_images", "read_labels", "weight_file", "load_any_model", "held", "default_inputs"]

_IMAGES = "images (uint8 pixels [N, C, H, W] or [N, H, W], or float32 model inputs [N, C, H, W])"


def held(tensors: dict) -> str:
    """``name dtype [shape]`` of every tensor, for error messages."""
    return ", ".join(f"{k} {v.dtype} {list(v.shape)}" for k, v in tensors.items()) or "no tensor"


def read_tensors(path, flag: str) -> dict:
    """Every tensor of a safetensors file (NumPy arrays), or a one-line :class:`InputError`."""
    from safetensors.numpy import load_file

    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types
        raise InputError(f"{flag}={str(path)!r} cannot be read as safetensors ({exc}). Write it with "
                         f"safetensors.numpy.save_file({{name: array}}, path).") from None


def read_images(path, model) -> np.ndarray:
    """The ``images`` tensor of an inputs file, checked for a classifier (name, dtype, rank, shape)."""
    tensors = read_tensors(path, "inputs")
    where = f"inputs={str(path)!r} holds {held(tensors)}"
    if "images" not in tensors or set(tensors) - {"images", "labels"}:
        raise InputError(f"{where}; a classifier reads {_IMAGES}.")
    x = tensors["images"]
    spec = (getattr(model, "input_spec", None) or {}).get("shape")
    ok_rank = x.ndim == 4 or (x.ndim == 3 and x.dtype == np.uint8)
    if x.dtype not in (np.uint8, np.float32) or not ok_rank or len(x) == 0:
        raise InputError(f"{where}; a classifier reads {_IMAGES}, at least one.")
    if spec is not None:
        shape = tuple(spec)
        got = x.shape[1:] if x.ndim == 4 else (1, *x.shape[1:])
        if got != shape:
            raise InputError(f"{where}; this model reads images of shape [N, {', '.join(map(str, shape))}].")
    return x


def read_labels(path, n: int) -> np.ndarray:
    """The ``labels`` tensor of a labels file: integer class indices, one per input (``n``)."""
    tensors = read_tensors(path, "labels")
    where = f"labels={str(path)!r} holds {held(tensors)}"
    y = tensors.get("labels")
    if y is None or y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise InputError(f"{where}; expected labels: integer class indices [N].")
    if len(y) != n:
        raise InputError(f"{where}; expected one label per input: labels [{n}].")
    if y.size and y.min() < 0:
        raise InputError(f"{where}; labels has a negative value {y.min()}: class indices start at 0.")
    return y.astype(np.int64)


def weight_file(path) -> Path:
    """The weight file of ``path``: itself, or a Hugging Face folder's ``model.safetensors``."""
    path = Path(path)
    if not path.is_dir():
        return path
    if (path / "model.safetensors").is_file():
        return path / "model.safetensors"
    found = sorted(path.glob("*.safetensors"))
    if len(found) == 1:
        return found[0]
    names = ", ".join(p.name for p in found) or "no .safetensors file"
    raise ModelFileError(f"folder {str(path)!r} holds {names}; a Hugging Face model folder has model.safetensors "
                         f"beside config.json.")


def load_any_model(path):
    """A model from a weight file or a Hugging Face folder (``config.json`` + ``model.safetensors``)."""
    import wkbnoise

    loader = getattr(wkbnoise, "load_model", None)
    if loader is not None:
        return loader(str(path))
    from ..runtime import load_model

    return load_model(weight_file(path))


def default_inputs(model, n: int | None = 500, calibration: int | None = None, seed: int = 0):
    """What a model is evaluated on when no inputs file is given.

    Parameters
    ----------
    model : Model
        A classifier (MNIST-shaped: the bundled test set) or an encoder loaded from a Hugging Face folder
        (the bundled English sentences through the folder's own tokenizer).
    n : int, optional
        Test inputs kept (all when None): for a classifier a seeded random sample, stratified by label.
    calibration : int, optional
        Calibration inputs kept (all when None): for a classifier a seeded random sample.
    seed : int
        Seed of the samples.

    Returns
    -------
    inputs : ndarray of uint8 or TokenBatch
        Test inputs.
    labels : ndarray of int64 or None
        Their labels (None for an encoder, scored by cosine similarity).
    calibration : ndarray of float32 or TokenBatch
        Unlabeled inputs for :func:`~wkbnoise.sensitivity.layer_sensitivities`, ready for the model.
    """
    if getattr(model, "task", "classifier") == "encoder":
        from ..text import sentence_inputs

        batch = sentence_inputs(model)
        return batch[:n], None, batch[:calibration]
    from .. import zoo

    from .sampling import sample_indices

    images, labels = zoo.test_set()
    calib = zoo.calibration_images()
    pick = sample_indices(len(images), len(images) if n is None else n, labels=labels, seed=seed,
                          source="the bundled test set")  # stratified: the test set is sorted by class
    cpick = sample_indices(len(calib), len(calib) if calibration is None else calibration, seed=seed,
                           what="calibration", source="the bundled calibration set")
    return images[pick], labels[pick], model.preprocess(calib[cpick])
