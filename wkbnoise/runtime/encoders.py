"""Transformer encoders: the zoo's ViT (pre-norm, timm names) and a Hugging Face BERT encoder (post-norm).

The BERT encoder is built from a Hugging Face ``config.json`` and reads ``BertModel`` tensor names
(``embeddings.word_embeddings.weight``, ``encoder.layer.N.attention.self.query.weight``, ...) with or without
a ``bert.`` prefix; :meth:`BertEncoder.encode` takes token ids (no tokenizer in the library).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError, ModelFileError
from .base import Model, Unit
from .cnn import _conv, _linear, _to_cnhw
from .layers import attention_bias, embeddings, layer_norm, postnorm_block, prenorm_block

__all__ = ["ViT", "BertEncoder"]

_F32 = np.float32


class ViT(Model):
    """ViT: patch_embed (conv k = stride = patch), cls token, pos_embed, pre-norm blocks, final norm, head."""

    arch = "vit"
    defaults = {"patch": 7, "dim": 64, "depth": 4, "heads": 4, "mlp": 128, "classes": 10, "eps": 1e-6}

    def _tokens(self) -> int:
        c, h, w = self.input_spec["shape"]
        return (h // self.config["patch"]) * (w // self.config["patch"])

    @property
    def units(self):
        c = self.config
        d, m, pt = c["dim"], c["mlp"], c["patch"]
        units = [Unit("patch_embed.weight", (d, self.input_spec["shape"][0], pt, pt), True)]
        for i in range(c["depth"]):
            b = f"blocks.{i}."
            units += [Unit(b + "attn.qkv.weight", (3 * d, d), True, kind="linear"),
                      Unit(b + "attn.proj.weight", (d, d), True, kind="linear"),
                      Unit(b + "mlp.fc1.weight", (m, d), True, kind="linear"),
                      Unit(b + "mlp.fc2.weight", (d, m), True, kind="linear")]
        return units + [Unit("head.weight", (c["classes"], d), True, kind="linear")]

    def extra_params(self):
        d = self.config["dim"]
        extra = {"cls_token": (1, 1, d), "pos_embed": (1, self._tokens() + 1, d),
                 "norm.weight": (d,), "norm.bias": (d,)}
        for i in range(self.config["depth"]):
            for n in ("norm1", "norm2"):
                extra[f"blocks.{i}.{n}.weight"] = (d,)
                extra[f"blocks.{i}.{n}.bias"] = (d,)
        return extra

    def _run(self, x, p, s):
        c = self.config
        n, d = len(x), c["dim"]
        pt = c["patch"]
        h = _conv(_to_cnhw(x), p, "patch_embed", s, stride=pt, fixed=True)  # (d, n, h', w')
        t = np.empty((n, self._tokens() + 1, d), dtype=_F32)
        t[:, 0] = p["cls_token"][0, 0]
        t[:, 1:] = h.reshape(d, n, -1).transpose(1, 2, 0)
        t += p["pos_embed"]
        for i in range(c["depth"]):
            t = prenorm_block(t, p, f"blocks.{i}.", heads=c["heads"], eps=c["eps"])
        cls = layer_norm(t[:, 0], p["norm.weight"], p["norm.bias"], c["eps"])
        return _linear(cls, p, "head")


_HF_HEADS = ("cls.", "classifier.", "qa_outputs.", "pooler.")
_ACTS = {"gelu": "none", "gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "gelu_fast": "tanh"}


class BertEncoder(Model):
    """Hugging Face ``BertModel`` encoder (post-norm layers); ``encode`` returns hidden states and a mean pool."""

    arch = "bert"
    task = "encoder"
    default_batch_size = 64
    defaults = {"layer_norm_eps": 1e-12, "hidden_act": "gelu", "type_vocab_size": 2,
                "position_embedding_type": "absolute"}

    def __init__(self, tensors, config, metadata, path=None, prefix=""):
        self.prefix = prefix
        cfg = {**self.defaults, **(config or {})}
        need = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                "max_position_embeddings")
        lacking = [k for k in need if k not in cfg]
        if lacking:
            raise ModelFileError(f"the BERT config lacks {', '.join(lacking)}. Give the model's Hugging Face "
                                 f"config.json (--config, or config.json beside the weights).")
        if cfg["hidden_act"] not in _ACTS:
            raise ModelFileError(f"config hidden_act={cfg['hidden_act']!r} is not supported; the runtime "
                                 f"implements {', '.join(_ACTS)}.")
        if cfg["position_embedding_type"] != "absolute":
            raise ModelFileError(f"config position_embedding_type={cfg['position_embedding_type']!r}: only "
                                 f"'absolute' position embeddings are implemented.")
        if cfg["hidden_size"] % cfg["num_attention_heads"]:
            raise ModelFileError(f"config hidden_size={cfg['hidden_size']} is not a multiple of "
                                 f"num_attention_heads={cfg['num_attention_heads']}.")
        super().__init__(tensors, cfg, metadata, path)

    def _input_spec(self, metadata):
        return {"shape": None}

    def _ignored(self, key):
        rest = key[len(self.prefix):] if key.startswith(self.prefix) else None
        if rest is not None:
            return rest.startswith("pooler.")
        return bool(self.prefix) and key.startswith(_HF_HEADS)

    @property
    def units(self):
        c, pre = self.config, self.prefix
        d, f = c["hidden_size"], c["intermediate_size"]
        e = pre + "embeddings."
        units = [Unit(e + "word_embeddings.weight", (c["vocab_size"], d), kind="embedding"),
                 Unit(e + "position_embeddings.weight", (c["max_position_embeddings"], d), kind="embedding"),
                 Unit(e + "token_type_embeddings.weight", (c["type_vocab_size"], d), kind="embedding")]
        for i in range(c["num_hidden_layers"]):
            b = f"{pre}encoder.layer.{i}."
            units += [Unit(b + "attention.self.query.weight", (d, d), True, kind="linear"),
                      Unit(b + "attention.self.key.weight", (d, d), True, kind="linear"),
                      Unit(b + "attention.self.value.weight", (d, d), True, kind="linear"),
                      Unit(b + "attention.output.dense.weight", (d, d), True, kind="linear"),
                      Unit(b + "intermediate.dense.weight", (f, d), True, kind="linear"),
                      Unit(b + "output.dense.weight", (d, f), True, kind="linear")]
        return units

    def extra_params(self):
        d, pre = self.config["hidden_size"], self.prefix
        names = [pre + "embeddings.LayerNorm"]
        for i in range(self.config["num_hidden_layers"]):
            b = f"{pre}encoder.layer.{i}."
            names += [b + "attention.output.LayerNorm", b + "output.LayerNorm"]
        return {f"{n}.{s}": (d,) for n in names for s in ("weight", "bias")}

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, weights=None):
        """Same as :meth:`encode`."""
        return self.encode(input_ids, attention_mask, token_type_ids, weights=weights)

    def forward(self, input_ids, weights=None, batch_size=None, attention_mask=None, token_type_ids=None):
        """The mean-pooled embedding (N, hidden_size) float32: the encoder's one output array, in the argument
        order of :meth:`Model.forward` (what a campaign compares between clean and noisy weights)."""
        return self.encode(input_ids, attention_mask, token_type_ids, weights=weights, batch_size=batch_size)[1]

    def prepare(self, x, batch_size=None):
        raise InputError("prepare() caches image inputs; an encoder takes token ids: call encode() directly.")

    def encode(self, input_ids, attention_mask=None, token_type_ids=None, *, weights=None, batch_size=None):
        """Encode token ids.

        Parameters
        ----------
        input_ids : array of int, shape (N, T)
            Token ids, 0 <= id < ``vocab_size``, T <= ``max_position_embeddings``.
        attention_mask : array of {0, 1}, shape (N, T), optional
            1 for real tokens, 0 for padding; all ones when omitted.
        token_type_ids : array of int, shape (N, T), optional
            Segment ids (0 when omitted).
        weights : dict of str to ndarray of float32, optional
            Replacement weights per quantizable layer (see :meth:`Model.forward`).
        batch_size : int, optional
            Sequences per chunk.

        Returns
        -------
        last_hidden_state : ndarray of float32, shape (N, T, hidden_size)
        mean_pooled : ndarray of float32, shape (N, hidden_size)
            Mean of the hidden states over the tokens whose mask is 1.
        """
        c, pre = self.config, self.prefix
        ids = self._ids(input_ids, "input_ids", c["vocab_size"])
        n, t = ids.shape
        if t > c["max_position_embeddings"]:
            raise InputError(f"input_ids has {t} tokens per sequence; this model reads at most "
                             f"max_position_embeddings={c['max_position_embeddings']}.")
        mask = np.ones((n, t), np.int64) if attention_mask is None else self._ids(attention_mask, "attention_mask", 2)
        types = np.zeros((n, t), np.int64) if token_type_ids is None else self._ids(
            token_type_ids, "token_type_ids", c["type_vocab_size"])
        for name, a in (("attention_mask", mask), ("token_type_ids", types)):
            if a.shape != ids.shape:
                raise InputError(f"{name} has shape {a.shape}; it must match input_ids {ids.shape}.")
        p = self._resolve(weights)
        bs = self._batch(batch_size)
        e = pre + "embeddings."
        hidden, pooled = np.empty((n, t, c["hidden_size"]), _F32), np.empty((n, c["hidden_size"]), _F32)
        for s in range(0, n, bs):
            sl = slice(s, s + bs)
            h = embeddings(ids[sl], types[sl], p[e + "word_embeddings.weight"], p[e + "position_embeddings.weight"],
                           p[e + "token_type_embeddings.weight"], p[e + "LayerNorm.weight"], p[e + "LayerNorm.bias"],
                           c["layer_norm_eps"])
            bias = attention_bias(mask[sl])
            for i in range(c["num_hidden_layers"]):
                h = postnorm_block(h, p, f"{pre}encoder.layer.{i}.", heads=c["num_attention_heads"],
                                   eps=c["layer_norm_eps"], bias=bias, act=_ACTS[c["hidden_act"]])
            hidden[sl] = h
            m = mask[sl].astype(_F32)
            pooled[sl] = np.einsum("ntd,nt->nd", h, m) / np.maximum(m.sum(axis=1), _F32(1))[:, None]
        return hidden, pooled

    @staticmethod
    def _ids(a, name, limit):
        a = np.asarray(a)
        if a.ndim != 2 or not np.issubdtype(a.dtype, np.integer):
            raise InputError(f"{name} has shape {a.shape} and dtype {a.dtype}; give an (N, T) integer array.")
        if a.size and (a.min() < 0 or a.max() >= limit):
            raise InputError(f"{name} has values in [{a.min()}, {a.max()}]; they must lie in [0, {limit}).")
        return a.astype(np.int64, copy=False)
