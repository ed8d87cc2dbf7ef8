"""``load_model``: a weight file, a Hugging Face folder or an exported network -> a runnable :class:`Model`.

Every model is a graph (:mod:`wkbnoise.runtime.graph`) run by the same walk. A safetensors file whose
metadata holds ``wkbnoise.graph`` is loaded from that graph; a zoo file (``wkbnoise.arch``) is built by its
architecture's builder (:mod:`wkbnoise.runtime.builders`); a Hugging Face checkpoint (``config.json`` +
``model.safetensors``) by :mod:`wkbnoise.importers.huggingface`; ``.onnx`` and Keras ``.h5`` files by their
importers.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np

from ..errors import InputError, ModelFileError
from .base import Model, PreparedInput
from .builders import ARCHITECTURES, build_zoo
from .graph import Graph
from .configs import check_config, check_input_spec
from .loader import as_path, read_safetensors

__all__ = ["ARCHITECTURES", "load_model", "model_from_graph", "accuracy", "predict", "save_model"]

#: file suffix -> (importer module, optional extra that provides its parser)
IMPORTERS = {".onnx": ("onnx", "onnx"), ".h5": ("keras_h5", None), ".hdf5": ("keras_h5", None),
             ".keras": ("keras_h5", None)}

_DEFAULT_INPUT = {"shape": [1, 28, 28], "mean": 0.1307, "std": 0.3081}


def _json_meta(meta: dict, key: str, path, default):
    if key not in meta:
        return default
    try:
        return json.loads(meta[key])
    except json.JSONDecodeError:
        raise ModelFileError(f"path={str(path)!r}: metadata {key}={meta[key][:80]!r} is not JSON. Write it with "
                             f"json.dumps(...).") from None


def model_from_graph(graph: Graph, params: dict, *, arch="graph", config=None, metadata=None, path=None) -> Model:
    """A :class:`Model` from a graph and its initializers, checked by a forward pass on one input.

    Raises
    ------
    ModelFileError
        A graph that does not fit its tensors (dangling names, missing initializers, shapes that do not chain).
    """
    params = {k: (v if v.dtype.kind != "f" or v.dtype == np.float32 else v.astype(np.float32))
              for k, v in params.items()}
    model = Model(graph, params, arch=arch, config=config, metadata=metadata, path=path)
    _dry_run(model, path)
    return model


def _dry_run(model: Model, path) -> None:
    """Run one input of the declared shape, so a graph whose shapes do not chain fails at load, not later."""
    feeds = {}
    for spec in model.graph.inputs:
        dims = spec["shape"][1:]
        if spec["dtype"].startswith("float"):
            if any(d is None for d in dims):
                return
            feeds[spec["name"]] = np.zeros((1, *dims), np.float32)
        else:
            feeds[spec["name"]] = np.zeros((1, *[2 if d is None else d for d in dims]), np.int64)
    if "attention_mask" in feeds:
        feeds["attention_mask"][:] = 1
    try:
        model.outputs(feeds)
    except InputError as exc:
        raise ModelFileError(f"path={str(path)!r}: the graph does not run on an input of its declared shape: "
                             f"{exc}") from None


def _load_graph_file(f, path) -> Model:
    meta = f.metadata
    graph = Graph.from_json(meta["wkbnoise.graph"], path)
    config = _json_meta(meta, "wkbnoise.config", path, {})
    return model_from_graph(graph, dict(f.tensors), arch=meta.get("wkbnoise.arch", "graph"),
                            config=config if isinstance(config, dict) else {}, metadata=meta, path=path)


def _load_zoo_file(f, path, config) -> Model:
    meta = f.metadata
    arch = meta["wkbnoise.arch"]
    if arch not in ARCHITECTURES:
        raise ModelFileError(
            f"path={str(path)!r}: metadata wkbnoise.arch={arch!r} is not a known architecture; the runtime "
            f"builds {', '.join(ARCHITECTURES)}, Hugging Face BERT/ViT checkpoints and converted graphs.")
    cfg = _json_meta(meta, "wkbnoise.config", path, {})
    if not isinstance(cfg, dict):
        raise ModelFileError(f"path={str(path)!r}: metadata wkbnoise.config must be a JSON object.")
    if isinstance(config, dict):
        cfg.update(config)
    task = meta.get("wkbnoise.task", "classifier")
    if task != "classifier":
        raise ModelFileError(f"path={str(path)!r}: metadata wkbnoise.task={task!r}; the {arch} builder makes "
                             f"a 'classifier'.")
    spec = dict(_DEFAULT_INPUT)
    given = _json_meta(meta, "wkbnoise.input", path, {})
    if not isinstance(given, dict):
        raise ModelFileError(f"path={str(path)!r}: metadata wkbnoise.input must be a JSON object such as "
                             f'{json.dumps(_DEFAULT_INPUT)}.')
    spec.update(given)
    check_config(arch, {**ARCHITECTURES[arch][0], **cfg}, f"path={str(path)!r}")
    check_input_spec(meta, f"path={str(path)!r}")
    graph, params, cfg = build_zoo(arch, f.tensors, cfg, spec, path)
    return model_from_graph(graph, params, arch=arch, config=cfg, metadata=meta, path=path)


def _import(path: Path, suffix: str):
    module_name, extra = IMPORTERS[suffix]
    try:
        module = importlib.import_module(f"wkbnoise.importers.{module_name}")
    except ModuleNotFoundError as exc:
        if exc.name and not exc.name.startswith("wkbnoise"):
            raise ModelFileError(f"path={str(path)!r}: reading {suffix} files needs the {exc.name!r} package; "
                                 f"install it with `pip install {extra or exc.name}`.") from None
        raise ModelFileError(f"path={str(path)!r}: this wkbnoise has no {suffix} importer "
                             f"(wkbnoise.importers.{module_name}).") from None
    return module


def load_model(path, config=None) -> Model:
    """Load a network.

    Parameters
    ----------
    path : str or Path
        A ``.safetensors`` file (a zoo/PyTorch export with ``wkbnoise.arch`` metadata, a converted file with
        ``wkbnoise.graph`` metadata, or a Hugging Face BERT/ViT weight file with ``config.json`` beside it),
        a Hugging Face model folder (``config.json`` + ``model.safetensors``), an ``.onnx`` file or a Keras
        ``.h5``/``.hdf5`` file.
    config : str, Path or dict, optional
        For Hugging Face files: the ``config.json`` (default: the one beside the weights). For a zoo file: a
        config overriding the metadata's.

    Returns
    -------
    Model
        BN folded, weights float32 and read-only.

    Raises
    ------
    ModelFileError
        A file that cannot be read or run: not safetensors, truncated, a pickle checkpoint, missing or
        unexpected tensors, shape mismatches, an unknown architecture, an operator the runtime lacks.

    Examples
    --------
    >>> from wkbnoise import load_model, zoo
    >>> model = load_model(zoo.path("lenet5"))  # doctest: +SKIP
    >>> model.arch  # doctest: +SKIP
    'lenet5'
    """
    path = as_path(path)
    if path.is_dir():
        from ..importers import huggingface

        return huggingface.load(path, config)
    suffix = path.suffix.lower()
    if suffix in IMPORTERS:
        if not path.is_file():
            raise ModelFileError(f"path={str(path)!r} does not exist or is not a file.")
        module = _import(path, suffix)
        graph, params = getattr(module, f"read_{module.__name__.rsplit('.', 1)[-1]}")(path)
        return model_from_graph(graph, params, arch=module.__name__.rsplit(".", 1)[-1], path=path,
                                metadata={"wkbnoise.source": str(path)})
    f = read_safetensors(path)
    meta = f.metadata
    if "wkbnoise.graph" in meta:
        return _load_graph_file(f, path)
    if meta.get("wkbnoise.arch") not in (None, "bert", "vit-hf"):
        return _load_zoo_file(f, path, config)
    from ..importers import huggingface

    if huggingface.recognizes(f.tensors) or meta.get("wkbnoise.arch") in ("bert", "vit-hf"):
        return huggingface.from_file(f, config)
    raise ModelFileError(
        f"path={str(path)!r} has no 'wkbnoise.arch' in its metadata and is not a Hugging Face BERT or ViT "
        f"checkpoint. Save it with metadata={{'wkbnoise.arch': one of {sorted(ARCHITECTURES)}, "
        f"'wkbnoise.config': json.dumps(config)}}, or convert it with `python -m wkbnoise convert`.")


def save_model(model: Model, out) -> Path:
    """Write ``model`` as one safetensors file: its initializers and its graph (``wkbnoise.graph`` metadata).

    Loading the file gives the same graph and the same weights, hence bit-identical outputs.
    """
    from safetensors.numpy import save_file

    out = Path(out)
    if out.suffix != ".safetensors":
        raise InputError(f"out={str(out)!r} must end in .safetensors.")
    meta = {"format": "pt", "wkbnoise.graph": model.graph.to_json(), "wkbnoise.arch": model.arch,
            "wkbnoise.config": json.dumps(model.config), "wkbnoise.task": model.task}
    for key in ("wkbnoise.float_accuracy",):
        if key in model.metadata:
            meta[key] = model.metadata[key]
    if model.input_spec.get("shape") is not None:
        meta["wkbnoise.input"] = json.dumps({k: model.input_spec[k] for k in ("shape", "mean", "std")})
    tensors = {k: np.ascontiguousarray(v) for k, v in model.params.items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out), metadata=meta)
    return out


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
