"""Token-id inputs of an encoder: a checked batch, and the pooled embedding a campaign compares.

An encoder reads three integer arrays of one shape (N, T): ``input_ids`` (vocabulary ids), ``attention_mask``
(1 for a real token, 0 for padding) and ``token_type_ids`` (segment ids). :class:`TokenBatch` holds them
checked against the model, slices like an array (``batch[:100]``) and has a length, so the evaluation code
treats it as it treats an image array.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

__all__ = ["TokenBatch", "TOKEN_NAMES", "encoder_limits", "token_batch", "encoder_outputs", "token_outputs",
           "TokenCheckpoints"]

#: the tensor names of an encoder's inputs, as Hugging Face names them
TOKEN_NAMES = ("input_ids", "attention_mask", "token_type_ids")


@dataclass(frozen=True)
class TokenBatch:
    """Checked token-id inputs of an encoder.

    Attributes
    ----------
    input_ids : ndarray of int64, shape (N, T)
        Vocabulary ids, ``0 <= id < vocab_size``.
    attention_mask : ndarray of int64, shape (N, T)
        1 for real tokens, 0 for padding.
    token_type_ids : ndarray of int64, shape (N, T)
        Segment ids, ``0 <= id < type_vocab_size``.
    source : str
        Where the ids come from (a file, or the bundled sentences and the tokenizer that made them).
    """

    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray
    source: str = ""

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, index) -> TokenBatch:
        """The sequences at ``index``: a slice (``batch[:n]``) or a 1-D array of row indices (a sample)."""
        if not isinstance(index, slice):
            arr = np.asarray(index)
            if arr.ndim != 1 or arr.dtype.kind not in "iu":
                raise InputError(f"a TokenBatch takes slices (batch[:n]) or 1-D integer index arrays, not "
                                 f"{type(index).__name__}.")
            index = arr
        return TokenBatch(self.input_ids[index], self.attention_mask[index], self.token_type_ids[index], self.source)

    @property
    def lengths(self) -> np.ndarray:
        """Real tokens per sequence (int64, shape (N,))."""
        return self.attention_mask.sum(axis=1)

    def describe(self) -> str:
        """One line: count, tokens per sequence and source."""
        n = self.lengths
        span = f"{n.min()}..{n.max()} tokens" if len(n) else "no tokens"
        return f"{len(self)} sequences of {span} ({self.source})" if self.source else f"{len(self)} sequences of {span}"


def encoder_limits(model) -> dict:
    """``vocab_size``, ``type_vocab_size`` and ``max_position_embeddings`` of an encoder.

    Read from ``model.config`` (a Hugging Face ``config.json``) where present, else from the rows of its
    ``word_embeddings`` / ``token_type_embeddings`` / ``position_embeddings`` weights.
    """
    cfg = getattr(model, "config", None) or {}
    rows = {}
    for ly in getattr(model, "layers", ()):
        for key, suffix in (("vocab_size", "word_embeddings.weight"), ("type_vocab_size", "token_type_embeddings.weight"),
                            ("max_position_embeddings", "position_embeddings.weight")):
            if ly.name.endswith(suffix):
                rows[key] = int(ly.weight.shape[0])
    out = {}
    for key in ("vocab_size", "type_vocab_size", "max_position_embeddings"):
        value = cfg.get(key, rows.get(key)) if isinstance(cfg, Mapping) else rows.get(key)
        if value is not None:
            out[key] = int(value)
    return out


def _ints(name: str, a, source: str) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype not in (np.int64, np.int32):
        raise InputError(f"{source}: {name} has dtype {a.dtype}; token inputs are int64 or int32 (N, T) arrays.")
    if a.ndim != 2:
        raise InputError(f"{source}: {name} has shape {list(a.shape)}; token inputs are (N, T) arrays, one row "
                         f"per sequence.")
    return a.astype(np.int64)


def token_batch(tensors: Mapping, model, source: str = "inputs") -> TokenBatch:
    """Check token-id arrays against an encoder and return them as a :class:`TokenBatch`.

    Parameters
    ----------
    tensors : mapping of str to array
        ``input_ids`` (required), ``attention_mask`` (default all ones) and ``token_type_ids`` (default
        zeros), int64 or int32 of one shape (N, T); no other names.
    model : encoder
        Supplies the limits (:func:`encoder_limits`).
    source : str
        Names the origin in error messages (e.g. the inputs file).

    Raises
    ------
    InputError
        One line naming what ``tensors`` holds and what is expected: unknown or missing names, a dtype
        other than int64/int32, shapes that differ or are not 2-D, an id out of range, a mask not 0/1,
        sequences longer than the position table.
    """
    held = ", ".join(f"{k} {np.asarray(v).dtype} {list(np.shape(v))}" for k, v in tensors.items()) or "nothing"
    expected = "input_ids (int64/int32 [N, T]), optional attention_mask and token_type_ids of the same shape"
    unknown = [k for k in tensors if k not in TOKEN_NAMES]
    if unknown or "input_ids" not in tensors:
        raise InputError(f"{source} holds {held}; an encoder reads {expected}.")
    ids = _ints("input_ids", tensors["input_ids"], source)
    arrays = {"input_ids": ids}
    for name in TOKEN_NAMES[1:]:
        if name in tensors:
            arrays[name] = _ints(name, tensors[name], source)
            if arrays[name].shape != ids.shape:
                raise InputError(f"{source} holds {held}; {name} must have the shape of input_ids "
                                 f"{list(ids.shape)}.")
    mask = arrays.get("attention_mask", np.ones_like(ids))
    types = arrays.get("token_type_ids", np.zeros_like(ids))
    limits = encoder_limits(model)
    checks = [("input_ids", ids, limits.get("vocab_size"), "vocab_size"), ("attention_mask", mask, 2, "0/1"),
              ("token_type_ids", types, limits.get("type_vocab_size"), "type_vocab_size")]
    for name, a, limit, what in checks:
        if a.size and (a.min() < 0 or (limit is not None and a.max() >= limit)):
            bound = f"[0, {limit})" if limit is not None else "[0, ...)"
            raise InputError(f"{source}: {name} has values in [{a.min()}, {a.max()}]; they must lie in {bound} "
                             f"({what} of this model).")
    t_max = limits.get("max_position_embeddings")
    if t_max is not None and ids.shape[1] > t_max:
        raise InputError(f"{source}: input_ids has {ids.shape[1]} tokens per sequence; this model reads at most "
                         f"max_position_embeddings={t_max}.")
    if len(ids) == 0:
        raise InputError(f"{source}: input_ids has no sequence; give at least one row.")
    return TokenBatch(ids, mask, types, source)


def encoder_outputs(model, batch: TokenBatch, weights=None, batch_size: int = 64) -> np.ndarray:
    """The mean-pooled embedding (N, hidden) float32 of ``batch``, ``batch_size`` sequences per call of
    ``model.encode(input_ids, attention_mask, token_type_ids, weights=weights)``.

    Each chunk is cut to its longest sequence first, so padding costs nothing (a padded position changes
    no real token's output: the attention mask excludes it).
    """
    outs = []
    for ids, mask, types in _trimmed_chunks(batch, batch_size):
        _, pooled = model.encode(ids, mask, types, weights=weights)
        outs.append(np.asarray(pooled, dtype=np.float32))
    return np.concatenate(outs) if outs else np.empty((0, 0), np.float32)


def _trimmed_chunks(batch: TokenBatch, batch_size: int):
    """``(input_ids, attention_mask, token_type_ids)`` of ``batch_size`` sequences at a time, each chunk cut to
    its longest sequence (right padding only; a chunk with padding inside keeps its full width)."""
    step = max(int(batch_size), 1)
    for s in range(0, len(batch), step):
        ids, mask, types = (a[s:s + step] for a in (batch.input_ids, batch.attention_mask, batch.token_type_ids))
        t = int(mask.sum(axis=1).max()) if mask.size else 0
        t = max(t, 1) if np.all(mask[:, t:] == 0) else ids.shape[1]
        yield ids[:, :t], mask[:, :t], types[:, :t]


def token_outputs(model, batch: TokenBatch, weights=None, batch_size: int = 64) -> np.ndarray:
    """What ``model`` returns on the token ids of ``batch``: the mean-pooled embedding (N, hidden) of an
    encoder (:func:`encoder_outputs`), the last graph output (logits (N, classes)) of a text classifier,
    float32, ``batch_size`` sequences per call, each chunk cut to its longest sequence."""
    if getattr(model, "task", "classifier") == "encoder":
        return encoder_outputs(model, batch, weights, batch_size)
    names = set(getattr(model, "input_names", TOKEN_NAMES))
    outs = []
    for chunk in _trimmed_chunks(batch, batch_size):
        feeds = {k: v for k, v in zip(TOKEN_NAMES, chunk, strict=True) if k in names}
        ids = chunk[0]
        outs.append(np.asarray(model.forward(feeds, weights=weights), dtype=np.float32).reshape(len(ids), -1))
    return np.concatenate(outs) if outs else np.empty((0, 0), np.float32)


class TokenCheckpoints:
    """:meth:`~wkbnoise.runtime.base.Model.checkpoints` of each chunk that :func:`token_outputs` runs.

    ``token_checkpoints.at(name).outputs(weights)`` is ``token_outputs(model, batch, weights, batch_size)``
    bit for bit (under the same BLAS thread count), computed from where layer ``name`` is first read.

    Parameters
    ----------
    model : Model
        A token model (an encoder or a text classifier).
    batch : TokenBatch
        The sequences.
    weights : dict of str to ndarray, optional
        The weights of the kept pass (see :meth:`~wkbnoise.runtime.base.Model.checkpoints`).
    batch_size : int
        Sequences per chunk, as given to :func:`token_outputs`.
    max_bytes : int, optional
        Memory all chunks' kept values may hold together [bytes] (default
        ``wkbnoise.runtime.base.CHECKPOINT_BYTES``).
    """

    def __init__(self, model, batch: TokenBatch, weights=None, batch_size: int = 64,
                 max_bytes: int | None = None):
        from ..runtime import base

        names = set(model.input_names)
        chunks = [{k: v for k, v in zip(TOKEN_NAMES, c, strict=True) if k in names}
                  for c in _trimmed_chunks(batch, batch_size)]
        total = base.CHECKPOINT_BYTES if max_bytes is None else max_bytes
        self.model = model
        encoder = getattr(model, "task", "classifier") == "encoder"
        self.output = "pooled" if encoder else model.graph.outputs[-1]
        self.chunks = [model.checkpoints(feeds, weights=weights, max_bytes=total // max(len(chunks), 1))
                       for feeds in chunks]
        self._n = len(batch)

    def __len__(self) -> int:
        return self._n

    def at(self, name: str) -> _TokenResume:
        """The sequences' outputs from where layer ``name`` is first read (see the class)."""
        return _TokenResume(self, [cp.at(name) for cp in self.chunks])


class _TokenResume:
    def __init__(self, owner: TokenCheckpoints, starts: list):
        self.owner = owner
        self.starts = starts

    def __len__(self) -> int:
        return len(self.owner)

    def outputs(self, weights=None) -> np.ndarray:
        """float32 (N, ...): the pooled embedding of an encoder, the logits of a text classifier."""
        m, name = self.owner.model, self.owner.output
        outs = [np.asarray(m.outputs(start, weights)[name], dtype=np.float32).reshape(len(start), -1)
                for start in self.starts]
        return np.concatenate(outs) if outs else np.empty((0, 0), np.float32)
