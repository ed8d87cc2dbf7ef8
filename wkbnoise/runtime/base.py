"""The model: a graph and its weights, with quantizable layers, weight swapping, batching and caching.

A model holds its graph (:mod:`wkbnoise.runtime.graph`) and its (BN-folded) float32 parameters read-only. ``model(x, weights={name: array})`` runs the
forward pass with the named layers' weights replaced for this call only: the replacement arrays are read
as they are (no copy when float32 C-contiguous), the model's graph and parameters are never written, so a
Monte Carlo campaign can call it hundreds of times with fresh noisy weights. The only state a call leaves
behind is scratch: the im2col work arrays kept for the calling thread, which the next call overwrites.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

__all__ = ["QuantLayer", "Model", "PreparedInput", "Checkpoints", "fold_batchnorm"]

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
    x : ndarray or dict of str to ndarray
        The (preprocessed) input as given to :meth:`Model.prepare`.
    feeds : dict of str to ndarray
        One array per graph input, checked (masks and segment ids filled in).
    batch_size : int
        The chunk size the caches were made for.
    caches : list of dict
        One cache per chunk (the im2col of the convolutions that read the input).
    buffer_sets : list of dict
        Reusable work arrays of the forward passes on this input, one set per thread that runs chunks.
    """

    def __init__(self, x, feeds: dict, batch_size: int, model_id: int):
        self.x = x
        self.feeds = feeds
        self.batch_size = batch_size
        self.model_id = model_id
        n = len(next(iter(feeds.values())))
        self.caches = [{} for _ in range(0, max(n, 1), batch_size)]
        self.buffer_sets: list[dict] = []
        self._n = n

    def __len__(self) -> int:
        return self._n


class Checkpoints:
    """Clean intermediate values of an input, kept where layers are first read (:meth:`Model.checkpoints`).

    ``checkpoints.at(name)`` goes to :meth:`Model.forward` in place of the input: the forward pass then
    starts where layer ``name`` is first read, from the values kept there, instead of from the input. Only
    the layers from that point on are computed again, and the outputs are those of a whole forward pass
    (same chunks, same sums) as long as every layer read before that point has the weights the checkpoints
    were made with; :meth:`Model.forward` checks that and refuses other weights.

    Attributes
    ----------
    feeds : dict of str to ndarray
        The checked graph inputs.
    batch_size : int
        Inputs per chunk.
    weights : dict of str to ndarray
        The weights, per quantizable layer, that the kept values were computed with (the arrays given,
        not copies: like :meth:`Model.forward`, the checkpoints read them and never write them; a pass
        that gives the very same arrays is checked without reading them again).
    reads : dict of str to int
        Per quantizable layer, the plan step that first reads it.
    kept : dict of str to list of Checkpoint
        Per layer name, one :class:`~wkbnoise.runtime.graph.Checkpoint` per chunk. Absent: the first layer
        (it reads the input) and layers whose values did not fit in the memory allowed; a pass ``at`` them
        starts at the input.
    """

    def __init__(self, x, feeds: dict, batch_size: int, model_id: int, weights: dict, kept: dict,
                 reads: dict):
        self.x = x
        self.feeds = feeds
        self.batch_size = batch_size
        self.model_id = model_id
        self.weights = weights
        self.reads = reads
        self.kept = kept
        self._n = len(next(iter(feeds.values())))

    def __len__(self) -> int:
        return self._n

    @property
    def nbytes(self) -> int:
        """Memory held by the kept values [bytes] (an array that several checkpoints share counts once)."""
        arrays = {id(a): a for chunks in self.kept.values() for c in chunks for a in c.values.values()}
        return sum(a.nbytes for a in arrays.values())

    def at(self, name: str) -> _ResumeAt:
        """The input to give :meth:`Model.forward` for a pass whose weights differ from layer ``name`` on:
        it starts where ``name`` is first read when values were kept there, else at the input (in the
        same chunks either way)."""
        if name not in self.weights:
            raise InputError(f"layer {name!r} is not a quantizable layer of this model; use names from "
                             "model.layers.")
        return _ResumeAt(self, name)


class _ResumeAt:
    """A forward pass's input: checkpoints and the layer whose first read it starts at."""

    def __init__(self, checkpoints: Checkpoints, name: str):
        self.checkpoints = checkpoints
        self.name = name

    def __len__(self) -> int:
        return len(self.checkpoints)


#: memory that :meth:`Model.checkpoints` may hold by default [bytes]
CHECKPOINT_BYTES = 256 << 20


#: inputs of one forward chunk, at most [bytes] (when no batch size is given): 200 MNIST images or 170 CIFAR
#: ones make one chunk, while 224 x 224 RGB images go 3 to a chunk, so a batch of them runs side by side
CHUNK_INPUT_BYTES = 2 << 20


def _workers(threads) -> int:
    """Chunk threads of a forward pass: ``threads``, or Numba's thread count when None."""
    if threads is None:
        import numba

        return numba.get_num_threads()
    if isinstance(threads, bool) or not isinstance(threads, int | np.integer) or threads < 1:
        raise InputError(f"threads={threads!r} must be a positive integer.")
    return int(threads)


def _kind(node, weight) -> str:
    if node.op == "Conv":
        return "depthwise" if int(node.attrs.get("group", 1)) > 1 and weight.shape[1] == 1 else "conv"
    return "embedding" if node.op == "Gather" else "linear"


_TOKEN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class Model:
    """A network: a graph over named weight tensors, run by :func:`wkbnoise.runtime.graph.run`.

    Parameters
    ----------
    graph : Graph
        The network.
    params : dict of str to ndarray
        Its initializers (BN folded); made read-only.
    arch : str
        Architecture name (``"lenet5"``, ..., ``"bert"``, ``"vit"``, or what the importer says).
    config : dict, optional
        The architecture's config.
    metadata : dict, optional
        The weight file's ``__metadata__``.
    path : Path, optional
        The weight file.

    Attributes
    ----------
    arch, config, metadata, path, graph, params
        As given.
    task : str
        ``"classifier"`` (``model(x)`` returns logits) or ``"encoder"`` (:meth:`encode`).
    layers : list of QuantLayer
        The graph's quantized initializers, in the order the forward pass first reads them.
    input_spec : dict
        Images: ``{"shape": [C, H, W], "mean", "std", "layout"}`` (the input is ``(uint8 / 255 - mean) /
        std``; ``shape`` in the model's own layout). Token inputs: ``{"shape": None}``.
    default_batch_size : int
        Inputs per forward chunk when none is given (fewer for large inputs: :data:`CHUNK_INPUT_BYTES`).
    """

    def __init__(self, graph, params: dict, *, arch: str = "graph", config=None, metadata=None, path=None):
        graph.validate(params, path)
        for arr in params.values():
            arr.setflags(write=False)
        self.graph = graph
        self.params = dict(params)
        self.arch = arch
        self.config = dict(config or {})
        self.metadata = dict(metadata or {})
        self.path = path
        self.task = graph.task
        self.input_names = [spec["name"] for spec in graph.inputs]
        self.tokens = "input_ids" in self.input_names
        self.default_batch_size = 64 if self.tokens else 200
        seen: dict[str, str] = {}
        quantized = set(graph.quantized)
        for step in graph.plan:
            for v in step.node.inputs:
                if v in quantized and v not in seen:
                    seen[v] = _kind(step.node, self.params[v])
        self.layers = [QuantLayer(n, self.params[n], int(self.params[n].size), seen.get(n, "linear"))
                       for n in list(seen) + [q for q in graph.quantized if q not in seen]]
        self._layer_shapes = {q.name: q.weight.shape for q in self.layers}
        self.input_spec = self._input_spec()
        # work arrays (im2col columns) lent to the forward passes of each calling thread, one set per chunk
        # thread; a prepared input keeps its own
        self._scratch = threading.local()

    def __getstate__(self) -> dict:
        """The model without its per-thread scratch (``copy.deepcopy`` and friends get a fresh one)."""
        state = dict(self.__dict__)
        del state["_scratch"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._scratch = threading.local()

    def _input_spec(self) -> dict:
        pre = self.graph.preprocess
        if self.tokens or not self.graph.inputs:
            return {"shape": None}
        shape = list(self.graph.inputs[0]["shape"][1:])
        spec = {"shape": shape, "layout": "NCHW", "mean": 0.0, "std": 1.0, "scale": 1.0}
        if pre is not None:
            one = (lambda v: v[0] if len(v) == 1 else list(v))
            spec.update(layout=pre.get("layout", "NCHW"), mean=one(pre.get("mean", [0.0])),
                        std=one(pre.get("std", [1.0])), scale=float(pre.get("scale", 1.0 / 255.0)))
        return spec

    # -- inputs and weights --------------------------------------------------------------------------------
    def preprocess(self, images) -> np.ndarray:
        """uint8 images in the model's layout (NCHW, or NHWC for a Keras model; (N, H, W) for one channel) ->
        float32 ``(pixels * scale - mean) / std``."""
        images = np.asarray(images)
        if self.input_spec["shape"] is None:
            raise InputError(f"this {self.arch} model reads token ids, not images: pass input_ids (and "
                             f"attention_mask) to forward() or encode().")
        if images.dtype != np.uint8:
            raise InputError(f"images has dtype {images.dtype}; preprocess takes uint8 pixels 0..255.")
        shape = tuple(self.input_spec["shape"])
        nhwc = self.input_spec["layout"] == "NHWC"
        channels = shape[-1] if nhwc else shape[0]
        if channels == 1 and images.ndim == len(shape):
            images = images[..., None] if nhwc else images[:, None]
        elif channels == 1 and nhwc and images.ndim == 4 and images.shape[1] == 1:
            images = images.reshape(images.shape[0], *images.shape[2:], 1)
        if images.ndim != len(shape) + 1 or any(s is not None and s != d for s, d in zip(shape, images.shape[1:], strict=True)):
            raise InputError(f"images has shape {images.shape}; this model reads (N, {', '.join(map(str, shape))}).")
        x = images.astype(_F32) / _F32(1.0 / self.input_spec["scale"])
        mean = np.asarray(self.input_spec["mean"], _F32)
        std = np.asarray(self.input_spec["std"], _F32)
        if not nhwc and mean.ndim:
            mean, std = mean[:, None, None], std[:, None, None]
        x -= mean
        x /= std
        return x

    def _resolve(self, weights) -> dict | None:
        if not weights:
            return None
        out = {}
        for name, w in weights.items():
            if name not in self._layer_shapes:
                raise InputError(
                    f"weights has key {name!r}, which is not a quantizable layer of {self.arch}. Use names from "
                    f"model.layers, e.g. {self.layers[0].name!r}.")
            if not isinstance(w, np.ndarray) or w.dtype != _F32:
                raise InputError(
                    f"weights[{name!r}] has type {type(w).__name__} / dtype {getattr(w, 'dtype', None)}; it must "
                    f"be a float32 ndarray. Use .astype(np.float32) on the replacement.")
            if w.shape != self._layer_shapes[name]:
                raise InputError(
                    f"weights[{name!r}] has shape {w.shape}; the layer's weight has shape "
                    f"{self._layer_shapes[name]}. Give a replacement of the same shape.")
            out[name] = np.ascontiguousarray(w)
        return out

    def _feeds(self, x, extra: dict) -> dict:
        """Checked graph inputs from ``x`` (an array for the first input, or a dict) and keyword arrays."""
        given = dict(x) if isinstance(x, dict) else {self.input_names[0]: x}
        given.update({k: v for k, v in extra.items() if v is not None})
        unknown = sorted(set(given) - set(self.input_names))
        if unknown:
            raise InputError(f"inputs {unknown} are not inputs of this model; it reads {self.input_names}.")
        feeds = {}
        for spec in self.graph.inputs:
            name = spec["name"]
            a = given.get(name)
            if a is None:
                if self.tokens and name in ("attention_mask", "token_type_ids") and "input_ids" in given:
                    n_t = np.shape(given["input_ids"])
                    a = np.ones(n_t, np.int64) if name == "attention_mask" else np.zeros(n_t, np.int64)
                else:
                    raise InputError(f"input {name!r} is missing; this model reads {self.input_names}.")
            feeds[name] = self._check_input(name, spec, a)
        if self.tokens:
            ids = feeds["input_ids"]
            for name in ("attention_mask", "token_type_ids"):
                if name in feeds and feeds[name].shape != ids.shape:
                    raise InputError(f"{name} has shape {feeds[name].shape}; it must match input_ids {ids.shape}.")
            if "attention_mask" in feeds and feeds["attention_mask"].size and not np.isin(
                    feeds["attention_mask"], (0, 1)).all():
                raise InputError("attention_mask holds values other than 0 and 1; give 1 for real tokens and 0 "
                                 "for padding.")
        n = {len(a) for a in feeds.values()}
        if len(n) > 1:
            raise InputError(f"the inputs have different numbers of rows {sorted(n)}; give one row per example.")
        return feeds

    @staticmethod
    def _check_input(name, spec, a):
        want = tuple(spec["shape"][1:])
        if spec["dtype"].startswith("float"):
            if not isinstance(a, np.ndarray) or a.dtype != _F32:
                raise InputError(f"x has dtype {getattr(a, 'dtype', type(a).__name__)}; the model reads float32 "
                                 f"inputs. Use model.preprocess(images_uint8) first.")
        else:
            a = np.asarray(a)
            if not np.issubdtype(a.dtype, np.integer):
                raise InputError(f"{name} has shape {a.shape} and dtype {a.dtype}; give an integer array of shape "
                                 f"(N, {', '.join('T' if s is None else str(s) for s in want)}).")
            a = a.astype(np.int64, copy=False)
        if a.ndim != len(want) + 1 or any(s is not None and s != d for s, d in zip(want, a.shape[1:], strict=False)):
            shown = ", ".join("T" if s is None else str(s) for s in want)
            raise InputError(f"{'x' if name == 'images' else name} has shape {a.shape}; this model reads (N, {shown}).")
        return np.ascontiguousarray(a)

    def _batch(self, batch_size, feeds: dict) -> int:
        """Inputs per chunk: ``batch_size``, or the default, capped so that a chunk's inputs stay under
        :data:`CHUNK_INPUT_BYTES` (large images then make several chunks, which run side by side)."""
        if batch_size is None:
            per_input = sum(a[:1].nbytes for a in feeds.values())
            return max(1, min(self.default_batch_size, CHUNK_INPUT_BYTES // max(per_input, 1)))
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1:
            raise InputError(f"batch_size={batch_size!r} must be a positive integer.")
        return int(batch_size)

    # -- forward ------------------------------------------------------------------------------------------
    def prepare(self, x, batch_size: int | None = None, **inputs) -> PreparedInput:
        """Check ``x`` once and cache its input-only work (the im2col of the convolutions that read it).

        Parameters
        ----------
        x : ndarray or dict of str to ndarray
            Preprocessed images (N, C, H, W), token ids (N, T), or a dict of the graph's inputs.
        batch_size : int, optional
            Chunk size of the forward passes that will use the cache.
        **inputs : ndarray
            Further graph inputs by name (``attention_mask=...``).

        Returns
        -------
        PreparedInput
            Pass it in place of ``x`` to :meth:`forward` / ``model(...)``; it holds memory of the order of
            ``N * H * W * kh * kw * 4`` bytes.
        """
        feeds = self._feeds(x, inputs)
        return PreparedInput(x, feeds, self._batch(batch_size, feeds), id(self))

    def checkpoints(self, x, layers=None, weights=None, batch_size: int | None = None, *,
                    max_bytes: int | None = None) -> Checkpoints:
        """Run ``x`` once and keep the intermediate values where each of ``layers`` is first read.

        A measurement that perturbs one layer at a time (:func:`wkbnoise.sensitivity.layer_sensitivities`)
        then recomputes only what follows that layer: ``model.forward(cp.at(name), weights=...)`` gives the
        outputs of a whole forward pass, bit for bit, when the BLAS library runs the same number of threads
        as here (one thread, or the chunks side by side, computes the same sums).

        Parameters
        ----------
        x : ndarray or dict of str to ndarray
            Preprocessed images or a dict of the graph's inputs.
        layers : list of str, optional
            Quantizable layer names (default: all).
        weights : dict of str to ndarray of float32, optional
            Weights of this pass (see :meth:`forward`); every later pass that resumes must read the same
            weights in the layers before its resume point.
        batch_size : int, optional
            Inputs per chunk; every resumed pass uses the same chunks.
        max_bytes : int, optional
            Memory the kept values may hold [bytes] (default :data:`CHECKPOINT_BYTES`; checkpoints share
            the values they both hold): layers are taken from the last one backwards (the largest saving
            per byte), each one kept if it still fits; the others resume from the input.

        Returns
        -------
        Checkpoints
        """
        from ..parallel import threads as numba_threads
        from .graph import first_reads, run_keeping
        from .ops import Context

        if isinstance(x, PreparedInput | Checkpoints | _ResumeAt):
            raise InputError("x must be an input array or a dict of inputs, not a prepared input or "
                             "checkpoints.")
        max_bytes = CHECKPOINT_BYTES if max_bytes is None else max_bytes
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int | np.integer) or max_bytes < 0:
            raise InputError(f"max_bytes={max_bytes!r} must be an integer >= 0.")
        names = [ly.name for ly in self.layers] if layers is None else list(layers)
        unknown = [n for n in names if n not in self._layer_shapes]
        if unknown:
            raise InputError(f"layers {unknown} are not quantizable layers of {self.arch}; use names from "
                             "model.layers.")
        swap = self._resolve(weights) or {}
        used = {ly.name: swap.get(ly.name, ly.weight) for ly in self.layers}
        feeds = self._feeds(x, {})
        bs = self._batch(batch_size, feeds)
        n = len(next(iter(feeds.values())))
        starts = range(0, max(n, 1), bs)
        reads = first_reads(self.graph, [ly.name for ly in self.layers])
        steps = {name: reads[name] for name in names if reads.get(name, 0) > 0}
        buffers = getattr(self._scratch, "sets", None)
        if buffers is None:
            buffers = self._scratch.sets = []
        if not buffers:
            buffers.append({})
        per_chunk: list[dict] = []
        want = set(steps.values())
        with numba_threads(1):  # as a forward pass of chunks in turn
            for start in starts:
                chunk = {v: a[start:start + bs] for v, a in feeds.items()}
                _, kept = run_keeping(self.graph, self.params, chunk, want, swap, Context(None, buffers[0]))
                if not per_chunk:  # after the first chunk: keep the latest steps that fit, for every chunk
                    total, chosen, held = 0, set(), set()
                    for k in sorted(kept, reverse=True):
                        new = {id(a): a.nbytes for a in kept[k].values.values() if id(a) not in held}
                        cost = sum(new.values()) * len(starts)  # shared copies count once
                        if total + cost <= max_bytes:
                            total += cost
                            chosen.add(k)
                            held.update(new)
                    want = chosen
                    kept = {k: c for k, c in kept.items() if k in chosen}
                per_chunk.append(kept)
                if not want:  # nothing fits: the other chunks' passes would keep nothing
                    break
        kept_by_layer = {name: [c[k] for c in per_chunk] for name, k in steps.items() if k in want}
        return Checkpoints(x, feeds, bs, id(self), used, kept_by_layer, reads)

    def _check_resume(self, r: _ResumeAt, swap) -> None:
        """Refuse weights that differ from the checkpoints' in a layer read before the resume point."""
        cp = r.checkpoints
        if cp.model_id != id(self):
            raise InputError("these checkpoints were made by another model; call this model's "
                             "checkpoints(x).")
        if r.name not in cp.kept:  # starts at the input
            return
        step = cp.kept[r.name][0].step
        for name, k in cp.reads.items():
            if k < step:
                now = (swap or {}).get(name, self.params[name])
                if now is not cp.weights[name] and not np.array_equal(now, cp.weights[name]):
                    raise InputError(f"weights[{name!r}] differ from those the checkpoints were made with, "
                                     f"and layer {name!r} is read before {r.name!r}: resume at {name!r} "
                                     "instead, or make new checkpoints with these weights.")

    def __call__(self, x, weights=None, **inputs):
        """The model's output (logits for a classifier, the pooled embedding for an encoder), float32."""
        return self.forward(x, weights, **inputs)

    def forward(self, x, weights=None, batch_size: int | None = None, *, threads: int | None = None,
                **inputs) -> np.ndarray:
        """Run the network on ``x`` in chunks of ``batch_size``, with ``weights`` replacing clean weights.

        Parameters
        ----------
        x : ndarray, dict of str to ndarray, or PreparedInput
            Preprocessed images (:meth:`preprocess`), token ids, a dict of the graph's inputs, the result
            of :meth:`prepare`, or a resume point ``checkpoints.at(name)`` (:meth:`checkpoints`).
        weights : dict of str to ndarray of float32, optional
            Replacement weight per quantizable layer name (same shape as ``layer.weight``); read, never
            copied or modified. Layers not named keep their clean weight.
        batch_size : int, optional
            Inputs per chunk (bounds the memory); a :class:`PreparedInput` keeps its own.
        threads : int, optional
            Threads that run the chunks side by side, each with one BLAS and one Numba thread (default:
            Numba's thread count, ``wkbnoise.threads``; never more than the chunks). Every chunk computes
            the same sums at any ``threads``, so the outputs do not depend on it. With one chunk, or
            ``threads=1``, the chunks run in turn, the matrix products on the BLAS library's threads and the
            Numba kernels on the calling thread (one thread pool at a time).
        **inputs : ndarray
            Further graph inputs by name (``attention_mask=...``, ``token_type_ids=...``).

        Returns
        -------
        ndarray of float32
            The graph's last output: logits (N, classes), or the pooled embedding (N, D) of an encoder.
        """
        return self.outputs(x, weights, batch_size, threads=threads, **inputs)[self.graph.outputs[-1]]

    def outputs(self, x, weights=None, batch_size: int | None = None, *, threads: int | None = None,
                **inputs) -> dict:
        """Every graph output, by name (see :meth:`forward`)."""
        from ..parallel import map_chunks
        from ..parallel import threads as numba_threads
        from .graph import run
        from .ops import Context

        swap = self._resolve(weights)
        workers = _workers(threads)
        resume = None
        if isinstance(x, Checkpoints):
            raise InputError("x is a Checkpoints object; give checkpoints.at(layer_name) to start at a "
                             "layer.")
        if isinstance(x, PreparedInput):
            if x.model_id != id(self):
                raise InputError("x was prepared by another model; call this model's prepare(x).")
            feeds, bs, caches, buffer_sets = x.feeds, x.batch_size, x.caches, x.buffer_sets
        elif isinstance(x, _ResumeAt):
            self._check_resume(x, swap)
            resume = x.checkpoints.kept.get(x.name)
            feeds, bs, caches = x.checkpoints.feeds, x.checkpoints.batch_size, None
            buffer_sets = getattr(self._scratch, "sets", None)
            if buffer_sets is None:
                buffer_sets = self._scratch.sets = []
        else:
            feeds = self._feeds(x, inputs)
            bs, caches = self._batch(batch_size, feeds), None
            buffer_sets = getattr(self._scratch, "sets", None)
            if buffer_sets is None:  # this thread's first forward pass
                buffer_sets = self._scratch.sets = []
        n = len(next(iter(feeds.values())))
        starts = range(0, max(n, 1), bs)
        while len(buffer_sets) < min(workers, len(starts)):  # scratch arrays per thread, kept on a prepared input
            buffer_sets.append({})

        side_by_side = min(workers, len(starts)) > 1  # then each chunk's BLAS calls run on one thread

        def one(k: int, slot: int) -> dict:
            start = starts[k]
            chunk = {name: a[start:start + bs] for name, a in feeds.items()}
            ctx = Context(None if caches is None else caches[k], buffer_sets[slot], serial=side_by_side)
            return run(self.graph, self.params, chunk, swap, ctx,
                       resume=None if resume is None else resume[k])

        if side_by_side:
            parts = map_chunks(one, len(starts), workers)
        else:
            # chunks in turn on the BLAS library's threads: Numba's kernels run on this thread only, one thread
            # pool at a time (Numba's pool beside OpenBLAS's spinning one made a MobileNetV2 forward of 8
            # images 5x slower on 2 cores; the kernels give the same bits at any thread count)
            with numba_threads(1):
                parts = [one(k, 0) for k in range(len(starts))]
        if len(parts) == 1:
            return parts[0]
        return {name: np.concatenate([p[name] for p in parts]) for name in self.graph.outputs}

    def encode(self, input_ids, attention_mask=None, token_type_ids=None, *, weights=None, batch_size=None):
        """Encode token ids.

        Parameters
        ----------
        input_ids : array of int, shape (N, T)
            Token ids, 0 <= id < the vocabulary size, T <= the number of position embeddings.
        attention_mask : array of {0, 1}, shape (N, T), optional
            1 for real tokens, 0 for padding; all ones when omitted.
        token_type_ids : array of int, shape (N, T), optional
            Segment ids (0 when omitted).
        weights : dict of str to ndarray of float32, optional
            Replacement weights per quantizable layer (see :meth:`forward`).
        batch_size : int, optional
            Sequences per chunk.

        Returns
        -------
        last_hidden_state : ndarray of float32, shape (N, T, hidden_size)
        mean_pooled : ndarray of float32, shape (N, hidden_size)
            Mean of the hidden states over the tokens whose mask is 1.
        """
        if "last_hidden_state" not in self.graph.outputs or "pooled" not in self.graph.outputs:
            raise InputError(f"this {self.arch} model is a {self.task} without last_hidden_state and pooled "
                             f"outputs; call model(x) instead of encode().")
        extra = {k: v for k, v in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids))
                 if k in self.input_names}
        out = self.outputs(input_ids, weights, batch_size, **extra)
        return out["last_hidden_state"], out["pooled"]

    def __repr__(self) -> str:
        n = sum(a.size for a in self.params.values())
        return f"<Model {self.arch}: {len(self.graph.nodes)} nodes, {len(self.layers)} quantizable layers, {n} parameters>"
