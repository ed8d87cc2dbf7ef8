"""The model object shared by every architecture: quantizable layers, weight swapping, batching, caching.

A model holds its (BN-folded) float32 parameters read-only. ``model(x, weights={name: array})`` runs the
forward pass with the named layers' weights replaced for this call only: the replacement arrays are read
as they are (no copy when float32 C-contiguous), the model is never mutated, so a Monte Carlo campaign can
call it hundreds of times with fresh noisy weights.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from ..errors import InputError, ModelFileError

__all__ = ["QuantLayer", "Model", "PreparedInput", "Unit", "fold_batchnorm"]

_F32 = np.float32


@dataclass(frozen=True)
class QuantLayer:
    """One quantizable weight tensor of a model.

    Attributes
    ----------
    name : str
        Tensor name in the file (PyTorch / Hugging Face name, e.g. ``"features.0.weight"``); the key of the
        ``weights`` mapping of :meth:`Model.forward`.
    weight : ndarray of float32
        The clean weight, BatchNorm folded in, in the PyTorch layout that the forward pass reads; read-only.
    n_weights : int
        Number of weights (``weight.size``).
    kind : str
        ``"conv"``, ``"depthwise"``, ``"linear"`` or ``"embedding"``.
    """

    name: str
    weight: np.ndarray
    n_weights: int
    kind: str


@dataclass(frozen=True)
class Unit:
    """A conv/linear/embedding weight in a file, its optional bias and the BatchNorm folded into it."""

    weight: str
    shape: tuple
    bias: bool = False
    bn: str | None = None
    kind: str = "conv"

    @property
    def bias_name(self) -> str:
        return self.weight[: -len("weight")] + "bias"


def fold_batchnorm(w, b, gamma, beta, mean, var, eps: float):
    """Fold ``BN(conv(x, w) + b)`` into one conv: ``w' = w s``, ``b' = beta + (b - mean) s``, ``s = gamma /
    sqrt(var + eps)`` per output channel (computed in float64, returned as float32)."""
    s = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + eps)
    w2 = (w.astype(np.float64) * s.reshape((-1,) + (1,) * (w.ndim - 1))).astype(_F32)
    b0 = np.zeros_like(s) if b is None else b.astype(np.float64)
    b2 = (beta.astype(np.float64) + (b0 - mean.astype(np.float64)) * s).astype(_F32)
    return w2, b2


class PreparedInput:
    """An input batch with its input-only work cached (see :meth:`Model.prepare`).

    Attributes
    ----------
    x : ndarray of float32
        The (preprocessed) input.
    batch_size : int
        The chunk size the caches were made for.
    caches : list of dict
        One cache per chunk, filled by the model's first layer.
    """

    def __init__(self, x, batch_size: int, model_id: int):
        self.x = x
        self.batch_size = batch_size
        self.model_id = model_id
        self.caches = [{} for _ in range(0, max(len(x), 1), batch_size)]
        self.buffers: dict = {}  # reusable work arrays of every forward pass on this input (Scratch.buffers)

    def __len__(self) -> int:
        return len(self.x)


class Scratch:
    """What one batch of a forward pass may reuse.

    Attributes
    ----------
    fixed : dict or None
        Input-only work of this batch (the im2col of the model input), kept by a :class:`PreparedInput`
        across calls; ``None`` for a plain array input.
    buffers : dict
        Reusable work arrays keyed by shape (im2col columns), shared by the batches of one call, or of every
        call on one :class:`PreparedInput`. Never holds a result that outlives the layer that made it; so
        two threads must not run forward passes on the same :class:`PreparedInput` at the same time.
    """

    __slots__ = ("fixed", "buffers")

    def __init__(self, fixed: dict | None, buffers: dict):
        self.fixed = fixed
        self.buffers = buffers


class Model:
    """A network loaded from a weight file; subclasses define ``units``, ``expected`` and ``_run``.

    Attributes
    ----------
    arch : str
        Architecture name (``"lenet5"``, ``"vgg"``, ``"resnet20"``, ``"mobilenetv2"``, ``"vit"``, ``"bert"``).
    config : dict
        The architecture's config (from the file's metadata, or ``config.json`` for BERT).
    task : str
        ``"classifier"`` (``model(x)`` returns logits) or ``"encoder"`` (:meth:`encode`).
    layers : list of QuantLayer
        Quantizable layers in forward order.
    params : dict of str to ndarray
        Every float32 parameter after BN folding (read-only).
    input_spec : dict
        ``{"shape": [C, H, W], "mean": float, "std": float}``: the input is ``(uint8 / 255 - mean) / std``.
    metadata : dict
        The file's ``__metadata__``.
    """

    arch = ""
    task = "classifier"
    default_batch_size = 200
    defaults: dict = {}

    def __init__(self, tensors: dict, config: dict, metadata: dict, path=None):
        self.config = {**self.defaults, **(config or {})}
        self.metadata = dict(metadata)
        self.path = path
        self.input_spec = self._input_spec(metadata)
        self._check_keys(tensors)
        params = {k: v for k, v in tensors.items() if k in self._expected}
        for unit in self.units:
            if unit.bn is not None:
                bn = unit.bn
                w, b = fold_batchnorm(tensors[unit.weight], tensors.get(unit.bias_name) if unit.bias else None,
                                      tensors[bn + ".weight"], tensors[bn + ".bias"],
                                      tensors[bn + ".running_mean"], tensors[bn + ".running_var"],
                                      float(self.config.get("bn_eps", 1e-5)))
                for suffix in ("weight", "bias", "running_mean", "running_var"):
                    params.pop(f"{bn}.{suffix}")
                params[unit.weight], params[unit.bias_name] = w, b
        for arr in params.values():
            arr.setflags(write=False)
        self.params = params
        self.layers = [QuantLayer(u.weight, params[u.weight],
                                  int(params[u.weight].size), u.kind) for u in self.units]
        self._layer_shapes = {q.name: q.weight.shape for q in self.layers}

    # -- file checks -------------------------------------------------------------------------------------
    @property
    def units(self) -> list[Unit]:
        raise NotImplementedError

    def extra_params(self) -> dict:
        """Float parameters that are neither units nor BN (norms, tokens): name -> shape."""
        return {}

    @property
    def _expected(self) -> dict:
        exp = {}
        for u in self.units:
            exp[u.weight] = tuple(u.shape)
            if u.bias:
                exp[u.bias_name] = (u.shape[0],)
            if u.bn is not None:
                for suffix in ("weight", "bias", "running_mean", "running_var"):
                    exp[f"{u.bn}.{suffix}"] = (u.shape[0],)
        exp.update(self.extra_params())
        return exp

    def _describe(self) -> str:
        return f"{self.arch} with config {json.dumps(self.config, separators=(',', ':'))}"

    def _check_keys(self, tensors: dict) -> None:
        expected = self._expected
        missing = [k for k in expected if k not in tensors]
        unexpected = [k for k in tensors if k not in expected and not self._ignored(k)]
        where = f"path={str(self.path)!r}: " if self.path else ""
        if missing:
            raise ModelFileError(
                f"{where}{len(missing)} tensor(s) missing for {self._describe()}: {_listing(missing)}. "
                f"Export the full state_dict of the model, or fix wkbnoise.arch/wkbnoise.config in the metadata."
            )
        if unexpected:
            raise ModelFileError(
                f"{where}{len(unexpected)} unexpected tensor(s) for {self._describe()}: {_listing(unexpected)}. "
                f"The file holds another architecture or config; fix wkbnoise.arch/wkbnoise.config."
            )
        bad = [f"{k} {list(tensors[k].shape)} (expected {list(s)})" for k, s in expected.items()
               if tuple(tensors[k].shape) != tuple(s)]
        if bad:
            raise ModelFileError(
                f"{where}shape mismatch for {self._describe()}: {_listing(bad)}. The config in the metadata "
                f"does not describe these weights; export them with the config they were trained with."
            )

    def _ignored(self, key: str) -> bool:
        return False

    def _input_spec(self, metadata: dict) -> dict:
        spec = {"shape": [1, 28, 28], "mean": 0.1307, "std": 0.3081}
        if "wkbnoise.input" in metadata:
            try:
                spec.update(json.loads(metadata["wkbnoise.input"]))
            except json.JSONDecodeError:
                raise ModelFileError(
                    f"metadata wkbnoise.input={metadata['wkbnoise.input']!r} is not JSON. Write it as "
                    f'\'{{"shape": [1, 28, 28], "mean": 0.1307, "std": 0.3081}}\'.'
                ) from None
        return spec

    # -- inputs and weights --------------------------------------------------------------------------------
    def preprocess(self, images) -> np.ndarray:
        """uint8 images (N, C, H, W) (or (N, H, W) for one channel) -> float32 ``(x / 255 - mean) / std``."""
        images = np.asarray(images)
        if images.dtype != np.uint8:
            raise InputError(f"images has dtype {images.dtype}; preprocess takes uint8 pixels 0..255.")
        shape = tuple(self.input_spec["shape"])
        if images.ndim == len(shape) and shape[0] == 1:
            images = images[:, None]
        if images.shape[1:] != shape:
            raise InputError(f"images has shape {images.shape}; this model reads (N, {', '.join(map(str, shape))}).")
        x = images.astype(_F32) / _F32(255.0)
        x -= _F32(self.input_spec["mean"])
        x /= _F32(self.input_spec["std"])
        return x

    def _resolve(self, weights) -> dict:
        if not weights:
            return self.params
        params = dict(self.params)
        for name, w in weights.items():
            if name not in self._layer_shapes:
                raise InputError(
                    f"weights has key {name!r}, which is not a quantizable layer of {self.arch}. Use names from "
                    f"model.layers, e.g. {self.layers[0].name!r}."
                )
            if not isinstance(w, np.ndarray) or w.dtype != _F32:
                raise InputError(
                    f"weights[{name!r}] has type {type(w).__name__} / dtype {getattr(w, 'dtype', None)}; it must "
                    f"be a float32 ndarray. Use .astype(np.float32) on the replacement."
                )
            if w.shape != self._layer_shapes[name]:
                raise InputError(
                    f"weights[{name!r}] has shape {w.shape}; the layer's weight has shape "
                    f"{self._layer_shapes[name]}. Give a replacement of the same shape."
                )
            params[name] = np.ascontiguousarray(w)
        return params

    def _check_x(self, x):
        if not isinstance(x, np.ndarray) or x.dtype != _F32:
            raise InputError(
                f"x has dtype {getattr(x, 'dtype', type(x).__name__)}; the model reads float32 inputs. "
                f"Use model.preprocess(images_uint8) first."
            )
        shape = tuple(self.input_spec["shape"])
        if x.shape[1:] != shape:
            raise InputError(f"x has shape {x.shape}; this model reads (N, {', '.join(map(str, shape))}).")
        return np.ascontiguousarray(x)

    def _batch(self, batch_size) -> int:
        if batch_size is None:
            return self.default_batch_size
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1:
            raise InputError(f"batch_size={batch_size!r} must be a positive integer.")
        return int(batch_size)

    # -- forward ------------------------------------------------------------------------------------------
    def prepare(self, x, batch_size: int | None = None) -> PreparedInput:
        """Cache the input-only work of ``x`` (the first layer's im2col) for repeated forward passes.

        Parameters
        ----------
        x : ndarray of float32
            Preprocessed inputs (N, C, H, W).
        batch_size : int, optional
            Chunk size of the forward passes that will use the cache.

        Returns
        -------
        PreparedInput
            Pass it in place of ``x`` to :meth:`forward` / ``model(...)``; it holds memory of the order of
            ``N * H * W * kh * kw * 4`` bytes.
        """
        x = self._check_x(x)
        return PreparedInput(x, self._batch(batch_size), id(self))

    def __call__(self, x, weights=None):
        """Logits (N, classes) float32 of inputs ``x`` (float32 or :class:`PreparedInput`)."""
        return self.forward(x, weights)

    def forward(self, x, weights=None, batch_size: int | None = None) -> np.ndarray:
        """Run the network on ``x`` in chunks of ``batch_size``, with ``weights`` replacing clean weights.

        Parameters
        ----------
        x : ndarray of float32 (N, C, H, W), or PreparedInput
            Preprocessed inputs (:meth:`preprocess`), or the result of :meth:`prepare`.
        weights : dict of str to ndarray of float32, optional
            Replacement weight per quantizable layer name (same shape as ``layer.weight``); read, never
            copied or modified. Layers not named keep their clean weight.
        batch_size : int, optional
            Images per chunk (bounds the memory); a :class:`PreparedInput` keeps its own.

        Returns
        -------
        ndarray of float32, shape (N, classes)
            Logits.
        """
        params = self._resolve(weights)
        if isinstance(x, PreparedInput):
            if x.model_id != id(self):
                raise InputError("x was prepared by another model; call this model's prepare(x).")
            bs, data, caches, buffers = x.batch_size, x.x, x.caches, x.buffers
        else:
            data = self._check_x(x)
            bs = self._batch(batch_size)
            caches, buffers = None, {}
        outs = []
        for k, start in enumerate(range(0, len(data), bs)):
            scratch = Scratch(None if caches is None else caches[k], buffers)
            outs.append(self._run(data[start:start + bs], params, scratch))
        if not outs:
            return self._run(data, params, Scratch(None, buffers))
        return outs[0] if len(outs) == 1 else np.concatenate(outs)

    def _run(self, x, p, scratch: Scratch):
        raise NotImplementedError

    def __repr__(self) -> str:
        n = sum(a.size for a in self.params.values())
        return f"<{type(self).__name__} {self.arch}: {len(self.layers)} quantizable layers, {n} parameters>"


def _listing(items, limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")
