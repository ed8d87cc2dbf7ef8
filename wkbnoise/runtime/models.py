"""``load_model``: a safetensors file (+ metadata, or a Hugging Face config.json) -> a runnable model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import InputError, ModelFileError
from .base import Model, PreparedInput
from .cnn import VGG, LeNet5, MobileNetV2, ResNet20
from .encoders import BertEncoder, ViT
from .loader import read_safetensors

__all__ = ["ARCHITECTURES", "load_model", "accuracy", "predict"]

#: architecture name (``wkbnoise.arch`` metadata) -> model class
ARCHITECTURES = {cls.arch: cls for cls in (LeNet5, VGG, ResNet20, MobileNetV2, ViT)}

_BERT_KEY = "embeddings.word_embeddings.weight"


def _read_config(config, path: Path) -> dict:
    if isinstance(config, dict):
        return dict(config)
    cfg_path = Path(config) if config is not None else path.with_name("config.json")
    if not cfg_path.is_file():
        raise ModelFileError(
            f"path={str(path)!r} holds a BERT encoder without wkbnoise metadata and no config was found at "
            f"{str(cfg_path)!r}. Give its Hugging Face config.json with --config (config= in Python)."
        )
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"config={str(cfg_path)!r} is not valid JSON ({exc}). Give the config.json "
                             f"that Hugging Face saved with the model.") from None
    if not isinstance(cfg, dict):
        raise ModelFileError(f"config={str(cfg_path)!r} is not a JSON object.")
    return cfg


def load_model(path, config=None) -> Model:
    """Load a network from a safetensors file.

    Parameters
    ----------
    path : str or Path
        A ``.safetensors`` file: a wkbnoise/PyTorch export whose ``__metadata__`` has ``wkbnoise.arch`` and
        ``wkbnoise.config`` (docs/internals.md), or a Hugging Face ``BertModel`` (keys with or without a
        ``bert.`` prefix).
    config : str, Path or dict, optional
        For BERT files: the Hugging Face ``config.json`` (default: ``config.json`` beside ``path``). For a
        wkbnoise file: a config overriding the metadata's.

    Returns
    -------
    Model
        BN folded, weights float32 and read-only.

    Raises
    ------
    ModelFileError
        A file that is not safetensors, truncated, a pickle checkpoint, with missing/unexpected keys, shape
        mismatches, an unknown architecture or an integer tensor where a weight belongs.

    Examples
    --------
    >>> from wkbnoise.runtime import load_model
    >>> from wkbnoise import zoo
    >>> model = load_model(zoo.path("lenet5"))  # doctest: +SKIP
    >>> model.arch  # doctest: +SKIP
    'lenet5'
    """
    path = Path(path)
    f = read_safetensors(path)
    meta = f.metadata
    arch = meta.get("wkbnoise.arch")
    if arch is None:
        prefix = next((pre for pre in ("", "bert.") if pre + _BERT_KEY in f.tensors), None)
        if prefix is None:
            raise ModelFileError(
                f"path={str(path)!r} has no 'wkbnoise.arch' in its metadata and is not a Hugging Face BERT "
                f"encoder. Save it with metadata={{'wkbnoise.arch': one of {sorted(ARCHITECTURES)}, "
                f"'wkbnoise.config': json.dumps(config)}} (docs/internals.md)."
            )
        return BertEncoder(f.tensors, _read_config(config, path), meta, path, prefix=prefix)
    if arch == "bert":
        prefix = "bert." if "bert." + _BERT_KEY in f.tensors else ""
        return BertEncoder(f.tensors, _read_config(config, path), meta, path, prefix=prefix)
    if arch not in ARCHITECTURES:
        raise ModelFileError(
            f"path={str(path)!r}: metadata wkbnoise.arch={arch!r} is not a known architecture; the runtime "
            f"builds {', '.join(ARCHITECTURES)} and Hugging Face BERT encoders."
        )
    cfg = {}
    if "wkbnoise.config" in meta:
        try:
            cfg = json.loads(meta["wkbnoise.config"])
        except json.JSONDecodeError:
            raise ModelFileError(f"path={str(path)!r}: metadata wkbnoise.config={meta['wkbnoise.config']!r} is "
                                 f"not JSON. Write it with json.dumps(config).") from None
        if not isinstance(cfg, dict):
            raise ModelFileError(f"path={str(path)!r}: metadata wkbnoise.config must be a JSON object.")
    if isinstance(config, dict):
        cfg.update(config)
    task = meta.get("wkbnoise.task", "classifier")
    if task != "classifier":
        raise ModelFileError(f"path={str(path)!r}: metadata wkbnoise.task={task!r}; the {arch} builder makes "
                             f"a 'classifier'.")
    try:
        return ARCHITECTURES[arch](f.tensors, cfg, meta, path)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ModelFileError(f"path={str(path)!r}: wkbnoise.config={json.dumps(cfg)} does not describe a "
                             f"{arch} ({type(exc).__name__}: {exc}). Use the config the weights were "
                             f"trained with.") from None


def _inputs(model: Model, images):
    if isinstance(images, PreparedInput):
        return images
    images = np.asarray(images)
    return model.preprocess(images) if images.dtype == np.uint8 else images


def predict(model: Model, images, weights=None, batch_size=None) -> np.ndarray:
    """Predicted class per image (int64), from uint8 images, float32 inputs or a :class:`PreparedInput`."""
    x = _inputs(model, images)
    if isinstance(x, PreparedInput):
        return model.forward(x, weights).argmax(axis=1)
    return model.forward(x, weights, batch_size).argmax(axis=1)


def accuracy(model: Model, images, labels, weights=None, batch_size=None) -> float:
    """Top-1 accuracy of a classifier.

    Parameters
    ----------
    model : Model
        A classifier.
    images : ndarray of uint8 (preprocessed here), ndarray of float32, or PreparedInput
        Inputs (N, C, H, W).
    labels : array of int, shape (N,)
        True classes.
    weights : dict of str to ndarray of float32, optional
        Replacement weights (see :meth:`Model.forward`).
    batch_size : int, optional
        Images per chunk.

    Returns
    -------
    float
        Fraction of images whose arg-max logit is the label [0..1].
    """
    if model.task != "classifier":
        raise InputError(f"accuracy needs a classifier; this {model.arch} model is an {model.task}.")
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(images):
        raise InputError(f"labels has shape {labels.shape}; it must be ({len(images)},), one per image.")
    return float(np.mean(predict(model, images, weights, batch_size) == labels))
