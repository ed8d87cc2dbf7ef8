"""Hugging Face checkpoints (``config.json`` + ``model.safetensors``) -> a model graph.

Reads the tensor names that ``save_pretrained`` writes, with or without the task model's prefix:

- BERT-family encoders: ``BertModel`` (``embeddings.word_embeddings.weight``,
  ``encoder.layer.N.attention.self.query.weight``, ...), and ``BertForSequenceClassification`` (``bert.``
  prefix, ``bert.pooler.dense`` and ``classifier``) whose head is kept when ``config.json`` names that
  architecture. Inputs ``input_ids``, ``attention_mask``, ``token_type_ids``; outputs ``last_hidden_state``,
  ``pooled`` (the mean over the tokens whose mask is 1) and, with the head, ``logits``.
- ViT: ``ViTModel`` and ``ViTForImageClassification`` (``vit.`` prefix, ``classifier``). Input ``images``
  (N, C, H, W) at the configured ``image_size``, normalized with ``preprocessor_config.json``'s mean and std
  (0.5 by default); outputs ``last_hidden_state``, ``pooled`` (token mean) and, with the head, ``logits``.

The translation builds the graph only; it never runs a forward pass.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ModelFileError
from ..runtime.builders import GraphBuilder, encoder_block, first_token, image_preprocess, patch_tokens
from ..runtime.loader import read_safetensors

__all__ = ["load", "from_file", "recognizes", "translate"]

_BERT_KEY = "embeddings.word_embeddings.weight"
_VIT_KEY = "embeddings.patch_embeddings.projection.weight"
_HEADS = ("cls.", "classifier.", "qa_outputs.", "pooler.")
_ACTS = {"gelu": "none", "gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "gelu_fast": "tanh"}
_BERT_DEFAULTS = {"layer_norm_eps": 1e-12, "hidden_act": "gelu", "type_vocab_size": 2,
                  "position_embedding_type": "absolute"}
_VIT_DEFAULTS = {"layer_norm_eps": 1e-12, "hidden_act": "gelu", "qkv_bias": True, "num_channels": 3,
                 "image_size": 224, "patch_size": 16}


def _family(tensors) -> tuple[str, str] | None:
    for family, key, prefixes in (("bert", _BERT_KEY, ("", "bert.")), ("vit", _VIT_KEY, ("", "vit."))):
        for pre in prefixes:
            if pre + key in tensors:
                return family, pre
    return None


def recognizes(tensors) -> bool:
    """True when the tensor names are those of a Hugging Face BERT or ViT checkpoint."""
    return _family(tensors) is not None


def _read_json(path: Path, what: str) -> dict:
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{what}={str(path)!r} is not valid JSON ({exc}). Give the file that Hugging "
                             f"Face saved with the model.") from None
    if not isinstance(d, dict):
        raise ModelFileError(f"{what}={str(path)!r} is not a JSON object.")
    return d


def _read_config(config, path: Path) -> dict:
    if isinstance(config, dict):
        return dict(config)
    cfg_path = Path(config) if config is not None else path.with_name("config.json")
    if not cfg_path.is_file():
        raise ModelFileError(
            f"path={str(path)!r} holds a Hugging Face checkpoint without wkbnoise metadata and no config was "
            f"found at {str(cfg_path)!r}. Give its Hugging Face config.json with --config (config= in Python).")
    return _read_json(cfg_path, "config")


def load(folder, config=None):
    """Load a Hugging Face model folder (``config.json`` + ``model.safetensors``) as a :class:`Model`."""
    folder = Path(folder)
    weights = folder / "model.safetensors"
    if not weights.is_file():
        found = sorted(p.name for p in folder.glob("*.safetensors"))
        if len(found) != 1:
            pickles = sorted(p.name for p in folder.glob("*.bin"))
            hint = (f" It holds {pickles}: pickle checkpoints are never read; save the model with "
                    f"save_pretrained(DIR, safe_serialization=True).") if pickles else ""
            raise ModelFileError(f"path={str(folder)!r} is a folder without model.safetensors (found "
                                 f"{found or 'no .safetensors file'}).{hint}")
        weights = folder / found[0]
    f = read_safetensors(weights)
    return from_file(f, config if config is not None else folder / "config.json")


def from_file(f, config=None):
    """A :class:`Model` from a read Hugging Face weight file (:class:`SafetensorsFile`) and its config."""
    from ..runtime.models import model_from_graph

    cfg = _read_config(config, f.path)
    graph, params, cfg, arch = translate(f.tensors, cfg, f.path)
    return model_from_graph(graph, params, arch=arch, config=cfg, metadata=f.metadata, path=f.path)


def translate(tensors: dict, config: dict, path=None):
    """``(graph, params, config with defaults, arch)`` of a Hugging Face BERT or ViT checkpoint."""
    fam = _family(tensors)
    if fam is None:
        raise ModelFileError(f"path={str(path)!r} is neither a Hugging Face BERT nor a ViT checkpoint (no "
                             f"{_BERT_KEY!r} or {_VIT_KEY!r} tensor, with or without a bert./vit. prefix).")
    family, prefix = fam
    if family == "bert":
        return (*_bert(tensors, {**_BERT_DEFAULTS, **config}, prefix, path), "bert")
    return (*_vit(tensors, {**_VIT_DEFAULTS, **config}, prefix, path), "vit")


def _check(cfg, need, path):
    lacking = [k for k in need if k not in cfg]
    if lacking:
        raise ModelFileError(f"path={str(path)!r}: the config lacks {', '.join(lacking)}. Give the model's "
                             f"Hugging Face config.json (--config, or config.json beside the weights).")
    if cfg["hidden_act"] not in _ACTS:
        raise ModelFileError(f"path={str(path)!r}: config hidden_act={cfg['hidden_act']!r} is not supported; "
                             f"the runtime implements {', '.join(_ACTS)}.")
    if cfg["hidden_size"] % cfg["num_attention_heads"]:
        raise ModelFileError(f"path={str(path)!r}: config hidden_size={cfg['hidden_size']} is not a multiple of "
                             f"num_attention_heads={cfg['num_attention_heads']}.")


def _layer_names(pre: str, i: int, vit: bool) -> dict:
    b = f"{pre}encoder.layer.{i}."
    a = b + ("attention.attention." if vit else "attention.self.")
    names = {"q": a + "query", "k": a + "key", "v": a + "value", "o": b + "attention.output.dense",
             "fc1": b + "intermediate.dense", "fc2": b + "output.dense"}
    if vit:
        names.update(ln1=b + "layernorm_before", ln2=b + "layernorm_after")
    else:
        names.update(ln1=b + "attention.output.LayerNorm", ln2=b + "output.LayerNorm")
    return names


def _head(b, cfg, t, pre, *, pooler: bool):
    """Sequence classification head on the first token: (pooler dense + tanh,) classifier."""
    h = first_token(b, t)
    d = cfg["hidden_size"]
    if pooler:
        h = b.node("Tanh", [b.linear(h, pre + "pooler.dense", (d, d))])
    n = b.tensors["classifier.weight"].shape[0] if "classifier.weight" in b.tensors else 2
    return b.linear(h, "classifier", (n, d), name="logits")


def _bert(tensors, cfg, pre, path):
    _check(cfg, ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                 "max_position_embeddings"), path)
    if cfg["position_embedding_type"] != "absolute":
        raise ModelFileError(f"path={str(path)!r}: config position_embedding_type="
                             f"{cfg['position_embedding_type']!r}: only 'absolute' position embeddings are implemented.")
    head = "BertForSequenceClassification" in (cfg.get("architectures") or []) and "classifier.weight" in tensors
    d = cfg["hidden_size"]
    b = GraphBuilder(tensors, f"a Hugging Face BERT encoder with {cfg['num_hidden_layers']} layers of width {d}",
                     path)
    e = pre + "embeddings."
    word = b.take(e + "word_embeddings.weight", (cfg["vocab_size"], d), quantized=True)
    h = b.node("Gather", [word, "input_ids"], name="word_embeddings")
    pos = b.node("wkbnoise.PositionIds", ["input_ids"], name="position_ids")
    table = b.take(e + "position_embeddings.weight", (cfg["max_position_embeddings"], d), quantized=True)
    h = b.node("Add", [h, b.node("Gather", [table, pos], name="position_embeddings")])
    types = b.take(e + "token_type_embeddings.weight", (cfg["type_vocab_size"], d), quantized=True)
    h = b.node("Add", [h, b.node("Gather", [types, "token_type_ids"], name="token_type_embeddings")])
    h = b.layer_norm(h, e + "LayerNorm", d, cfg["layer_norm_eps"])
    for i in range(cfg["num_hidden_layers"]):
        h = encoder_block(b, h, _layer_names(pre, i, False), dim=d, heads=cfg["num_attention_heads"],
                          mlp=cfg["intermediate_size"], eps=cfg["layer_norm_eps"], act=_ACTS[cfg["hidden_act"]],
                          prenorm=False, mask="attention_mask")
    out = [b.node("Identity", [h], name="last_hidden_state"),
           b.node("wkbnoise.MaskedMean", [h, "attention_mask"], name="pooled")]
    if head:
        out.append(_head(b, cfg, h, pre, pooler=True))
    inputs = [{"name": n, "dtype": "int64", "shape": [None, None]}
              for n in ("input_ids", "attention_mask", "token_type_ids")]

    def ignore(k):
        rest = k[len(pre):] if k.startswith(pre) else None
        if rest is not None:
            return rest.startswith("pooler.") and not head
        return bool(pre) and k.startswith(_HEADS) and not head

    graph, params = b.finish(inputs, out, task="classifier" if head else "encoder", ignore=ignore)
    return graph, params, cfg


def _vit(tensors, cfg, pre, path):
    _check(cfg, ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"), path)
    d, p, c, side = cfg["hidden_size"], cfg["patch_size"], cfg["num_channels"], cfg["image_size"]
    side = side if isinstance(side, int) else side[0]
    head = "classifier.weight" in tensors
    b = GraphBuilder(tensors, f"a Hugging Face ViT with {cfg['num_hidden_layers']} layers of width {d}", path)
    e = pre + "embeddings."
    n = (side // p) ** 2
    t = patch_tokens(b, "images", e + "patch_embeddings.projection", channels=c, dim=d, patch=p,
                     cls=e + "cls_token", pos=e + "position_embeddings", n_tokens=n)
    for i in range(cfg["num_hidden_layers"]):
        t = encoder_block(b, t, _layer_names(pre, i, True), dim=d, heads=cfg["num_attention_heads"],
                          mlp=cfg["intermediate_size"], eps=cfg["layer_norm_eps"], act=_ACTS[cfg["hidden_act"]],
                          qkv_bias=bool(cfg["qkv_bias"]))
    t = b.layer_norm(t, pre + "layernorm", d, cfg["layer_norm_eps"], name="last_hidden_state")
    out = [t, b.node("ReduceMean", [t], {"axes": [1], "keepdims": 0}, name="pooled")]
    if head:
        out.append(_head(b, cfg, t, pre, pooler=False))
    pre_cfg = {}
    pp = Path(path).with_name("preprocessor_config.json") if path is not None else None
    if pp is not None and pp.is_file():
        pre_cfg = _read_json(pp, "preprocessor_config")
    mean = pre_cfg.get("image_mean", [0.5] * c) if pre_cfg.get("do_normalize", True) else [0.0] * c
    std = pre_cfg.get("image_std", [0.5] * c) if pre_cfg.get("do_normalize", True) else [1.0] * c
    scale = pre_cfg.get("rescale_factor", 1 / 255) if pre_cfg.get("do_rescale", True) else 1.0
    inputs = [{"name": "images", "dtype": "float32", "shape": [None, c, side, side]}]

    def ignore(k):
        return k.startswith((pre + "pooler.", "pooler.", pre + "embeddings.mask_token"))

    graph, params = b.finish(inputs, out, task="classifier" if head else "encoder",
                             preprocess=image_preprocess(mean, std, scale=scale), ignore=ignore)
    return graph, params, cfg
