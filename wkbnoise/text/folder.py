"""A Hugging Face folder's own tokenizer, and the bundled English sentences it turns into token ids.

An encoder needs no inputs file: :func:`sentence_inputs` tokenizes the sentences bundled with wkbnoise
(``sentences.txt``: 201 plain English sentences written for this package) with the tokenizer saved beside
the weights:

- with the ``tokenizers`` package installed (``pip install wkbnoise[text]``): ``tokenizer.json`` as saved, or
  ``vocab.txt`` with the options of ``tokenizer_config.json``;
- without it: :class:`~wkbnoise.text.wordpiece.WordPiece`, a plain reader of ``vocab.txt`` (or of a WordPiece
  ``tokenizer.json``) that gives the same ids for BERT-family tokenizers.

Sequences are ``[CLS] ... [SEP]``, right-padded with the pad id to the longest one, truncated to the
smaller of ``model_max_length`` and the model's position table.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import InputError
from .batch import TokenBatch, encoder_limits
from .wordpiece import WordPiece

__all__ = ["bundled_sentences", "load_tokenizer", "sentence_inputs", "model_folder", "BACKENDS"]

#: tokenizer back ends: ``auto`` takes ``tokenizers`` when it is installed, else ``plain``
BACKENDS = ("auto", "tokenizers", "plain")
_DEFAULT_MAX = 512


def bundled_sentences() -> list[str]:
    """The bundled English sentences (one per line of ``wkbnoise/text/sentences.txt``)."""
    text = resources.files("wkbnoise.text").joinpath("sentences.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def model_folder(model_or_path) -> Path:
    """The folder of a Hugging Face model: the path itself if a folder, the folder of a weight file, or the
    folder of ``model.path``."""
    path = model_or_path if isinstance(model_or_path, str | Path) else getattr(model_or_path, "path", None)
    if path is None:
        raise InputError("this model does not say which file it was loaded from (no .path), so its tokenizer "
                         "cannot be found; give token ids instead (a TokenBatch, or --inputs FILE.safetensors).")
    path = Path(path)
    return path if path.is_dir() else path.parent


def _tokenizer_config(folder: Path) -> dict:
    path = folder / "tokenizer_config.json"
    if not path.is_file():
        return {}
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{str(path)!r} is not valid JSON ({exc}).") from None
    return cfg if isinstance(cfg, dict) else {}


def _token(cfg: dict, key: str, default: str) -> str:
    tok = cfg.get(key, default)
    return tok.get("content", default) if isinstance(tok, dict) else str(tok)


class _Tokenizer:
    """``encode(sentences, max_length) -> list of id lists`` with a pad id and a description."""

    def __init__(self, encode, pad_id: int, name: str):
        self.encode, self.pad_id, self.name = encode, int(pad_id), name


def load_tokenizer(folder, backend: str = "auto") -> _Tokenizer:
    """The tokenizer saved in a Hugging Face folder.

    Parameters
    ----------
    folder : str or Path
        Holds ``tokenizer.json`` and/or ``vocab.txt`` (and optionally ``tokenizer_config.json``).
    backend : {"auto", "tokenizers", "plain"}
        ``tokenizers`` needs that package; ``plain`` is :class:`WordPiece`; ``auto`` takes the first available.

    Returns
    -------
    object
        ``.encode(sentences, max_length)`` -> list of id lists (with ``[CLS]``/``[SEP]``), ``.pad_id``,
        ``.name`` (which back end read which file).
    """
    if backend not in BACKENDS:
        raise InputError(f"backend={backend!r} must be one of {', '.join(BACKENDS)}.")
    folder = Path(folder)
    cfg = _tokenizer_config(folder)
    vocab, tj = folder / "vocab.txt", folder / "tokenizer.json"
    if not vocab.is_file() and not tj.is_file():
        raise InputError(f"{str(folder)!r} has no tokenizer (neither vocab.txt nor tokenizer.json), so its "
                         f"sentences cannot be tokenized; give token ids with --inputs FILE.safetensors "
                         f"(input_ids, attention_mask, token_type_ids).")
    options = {"do_lower_case": cfg.get("do_lower_case", True), "strip_accents": cfg.get("strip_accents"),
               "tokenize_chinese_chars": cfg.get("tokenize_chinese_chars", True),
               "unk_token": _token(cfg, "unk_token", "[UNK]"), "cls_token": _token(cfg, "cls_token", "[CLS]"),
               "sep_token": _token(cfg, "sep_token", "[SEP]"), "pad_token": _token(cfg, "pad_token", "[PAD]"),
               "mask_token": _token(cfg, "mask_token", "[MASK]")}
    if backend in ("auto", "tokenizers"):
        try:
            import tokenizers
        except ImportError:
            if backend == "tokenizers":
                raise InputError("backend='tokenizers' needs the tokenizers package: pip install tokenizers "
                                 "(or use backend='plain').") from None
        else:
            return _hf_tokenizer(tokenizers, folder, options)
    if vocab.is_file():
        wp = WordPiece.from_vocab_file(vocab, **options)
        name = "plain WordPiece reader of vocab.txt"
    else:
        special = {k: options[k] for k in ("cls_token", "sep_token", "pad_token", "mask_token")}
        wp = WordPiece.from_tokenizer_json(tj, **special)
        name = "plain WordPiece reader of tokenizer.json"
    return _Tokenizer(lambda sents, max_length: [wp.encode(s, max_length) for s in sents], wp.pad_id, name)


def _hf_tokenizer(tokenizers, folder: Path, options: dict) -> _Tokenizer:
    tj = folder / "tokenizer.json"
    if tj.is_file():
        tok = tokenizers.Tokenizer.from_file(str(tj))
        name = f"tokenizers {tokenizers.__version__} (tokenizer.json)"
    else:
        strip = options["strip_accents"]
        tok = tokenizers.BertWordPieceTokenizer(
            str(folder / "vocab.txt"), unk_token=options["unk_token"], sep_token=options["sep_token"],
            cls_token=options["cls_token"], pad_token=options["pad_token"], clean_text=True,
            handle_chinese_chars=options["tokenize_chinese_chars"], strip_accents=strip,
            lowercase=options["do_lower_case"])
        name = f"tokenizers {tokenizers.__version__} (vocab.txt)"
    pad_id = tok.token_to_id(options["pad_token"])
    if pad_id is None:
        raise InputError(f"the tokenizer of {str(folder)!r} has no pad token {options['pad_token']!r}.")

    def encode(sentences, max_length):
        tok.no_padding()
        tok.enable_truncation(max_length)
        return [e.ids for e in tok.encode_batch(list(sentences))]

    return _Tokenizer(encode, pad_id, name)


def sentence_inputs(model, n: int | None = None, *, backend: str = "auto", sentences=None) -> TokenBatch:
    """Token ids of the bundled sentences (or of ``sentences``) through the model folder's own tokenizer.

    Parameters
    ----------
    model : encoder, str or Path
        A model loaded from a Hugging Face folder or its weight file (its ``.path`` locates the tokenizer),
        or the folder itself.
    n : int, optional
        Keep the first ``n`` sentences.
    backend : {"auto", "tokenizers", "plain"}
        See :func:`load_tokenizer`.
    sentences : list of str, optional
        Other sentences than the bundled ones.

    Returns
    -------
    TokenBatch
        int64 (N, T) ``input_ids``, ``attention_mask`` (right padding), ``token_type_ids`` (zeros).
    """
    folder = model_folder(model)
    tok = load_tokenizer(folder, backend)
    text = bundled_sentences() if sentences is None else [str(s) for s in sentences]
    source = "bundled English sentences" if sentences is None else "given sentences"
    if n is not None:
        text = text[: int(n)]
    if not text:
        raise InputError("no sentence to tokenize: give at least one.")
    limits = {} if isinstance(model, str | Path) else encoder_limits(model)
    max_len = _max_length(_tokenizer_config(folder), limits.get("max_position_embeddings"))
    rows = tok.encode(text, max_len)
    t = max(len(r) for r in rows)
    ids = np.full((len(rows), t), tok.pad_id, np.int64)
    mask = np.zeros((len(rows), t), np.int64)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
        mask[i, : len(r)] = 1
    vocab_size = limits.get("vocab_size")
    if vocab_size is not None and ids.max() >= vocab_size:
        raise InputError(f"the tokenizer of {str(folder)!r} gives ids up to {ids.max()}, but the model's "
                         f"vocab_size is {vocab_size}: the tokenizer files belong to another model.")
    return TokenBatch(ids, mask, np.zeros_like(ids), f"{source}, {tok.name}")


def _max_length(cfg: dict, positions) -> int:
    cands = [_DEFAULT_MAX]
    m = cfg.get("model_max_length")
    if isinstance(m, int | float) and 2 <= m < 1e6:
        cands.append(int(m))
    if positions:
        cands.append(int(positions))
    return min(cands)
