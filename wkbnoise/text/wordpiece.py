"""A plain BERT WordPiece tokenizer: ``vocab.txt`` (or a WordPiece ``tokenizer.json``) -> token ids, no dependency.

It reproduces what Hugging Face's ``BertTokenizer`` does to one sentence:

0. a special token written in the text (``[CLS]``, ``[SEP]``, ``[PAD]``, ``[UNK]``, ``[MASK]``, exactly so)
   stays one token; the text between them goes through steps 1-5;
1. *clean*: drop NUL, U+FFFD and control characters; every whitespace character becomes a space;
2. put spaces around CJK ideographs (``tokenize_chinese_chars``);
3. NFC-normalise, split on whitespace; per word, lowercase (``do_lower_case``) and strip accents (NFD, drop
   the combining marks; by default whenever lowercasing, or as ``strip_accents`` says);
4. split every punctuation character off as its own word (ASCII symbols ``!"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~``
   and every Unicode ``P*`` character);
5. WordPiece, greedy longest match first: the longest vocabulary entry that starts the word, then the longest
   ``##``-prefixed entry that starts the rest, and so on; a word with a piece that matches nothing, or longer
   than ``max_input_chars_per_word`` characters, becomes one ``[UNK]``;
6. ``[CLS]`` + pieces (truncated to ``max_length - 2``) + ``[SEP]``.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

from ..errors import InputError

__all__ = ["WordPiece"]

_ASCII_PUNCT = {*range(33, 48), *range(58, 65), *range(91, 97), *range(123, 127)}
_CJK = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
        (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


def _is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_control(ch: str) -> bool:
    return ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")


def _is_punctuation(ch: str) -> bool:
    return ord(ch) in _ASCII_PUNCT or unicodedata.category(ch).startswith("P")


def _is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _CJK)


def _strip_accents(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")


class WordPiece:
    """BERT's basic + WordPiece tokenization over a fixed vocabulary.

    Parameters
    ----------
    vocab : list of str
        The vocabulary in id order (line ``i`` of ``vocab.txt`` is id ``i``).
    do_lower_case : bool
        Lowercase every word (uncased models).
    strip_accents : bool or None
        Remove combining accents; ``None`` follows ``do_lower_case``.
    tokenize_chinese_chars : bool
        Split CJK ideographs into words of one character.
    unk_token, cls_token, sep_token, pad_token : str
        Special tokens; each must be in the vocabulary.
    mask_token : str
        Also kept whole when written in the text, if it is in the vocabulary.
    max_input_chars_per_word : int
        Longer words become ``unk_token``.
    """

    def __init__(self, vocab, *, do_lower_case: bool = True, strip_accents: bool | None = None,
                 tokenize_chinese_chars: bool = True, unk_token: str = "[UNK]", cls_token: str = "[CLS]",
                 sep_token: str = "[SEP]", pad_token: str = "[PAD]", mask_token: str = "[MASK]",
                 max_input_chars_per_word: int = 100):
        self.vocab = {tok: i for i, tok in enumerate(vocab)}
        self.do_lower_case = bool(do_lower_case)
        self.strip_accents = self.do_lower_case if strip_accents is None else bool(strip_accents)
        self.tokenize_chinese_chars = bool(tokenize_chinese_chars)
        self.max_input_chars_per_word = int(max_input_chars_per_word)
        missing = [t for t in (unk_token, cls_token, sep_token, pad_token) if t not in self.vocab]
        if missing:
            raise InputError(f"the vocabulary ({len(self.vocab)} entries) lacks the special token(s) "
                             f"{', '.join(missing)}; give the vocab.txt saved with the model.")
        self.unk_token = unk_token
        self.unk_id, self.cls_id = self.vocab[unk_token], self.vocab[cls_token]
        self.sep_id, self.pad_id = self.vocab[sep_token], self.vocab[pad_token]
        specials = (unk_token, cls_token, sep_token, pad_token, mask_token)
        self.specials = sorted({t for t in specials if t in self.vocab}, key=len, reverse=True)

    # -- construction from files -------------------------------------------------------------------------
    @classmethod
    def from_vocab_file(cls, path, **options) -> WordPiece:
        """From a ``vocab.txt`` (one token per line, the line number is the id)."""
        try:
            lines = Path(path).read_text(encoding="utf-8").split("\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"vocab={str(path)!r} cannot be read as UTF-8 text ({exc}).") from None
        if lines and lines[-1] == "":
            lines.pop()
        return cls([tok.rstrip("\r") for tok in lines], **options)

    @classmethod
    def from_tokenizer_json(cls, path, **options) -> WordPiece:
        """From a Hugging Face ``tokenizer.json`` whose model is WordPiece with a BERT normalizer."""
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"tokenizer={str(path)!r} cannot be read as JSON ({exc}).") from None
        model = doc.get("model") or {}
        norm = doc.get("normalizer") or {}
        if model.get("type") != "WordPiece" or model.get("continuing_subword_prefix", "##") != "##" \
                or norm.get("type") != "BertNormalizer":
            raise InputError(f"tokenizer={str(path)!r} is a {model.get('type')} model with a {norm.get('type')} "
                             f"normalizer; the plain reader takes BERT WordPiece only. Install the tokenizers "
                             f"package (pip install tokenizers) to read it.")
        vocab = sorted(model["vocab"], key=model["vocab"].get)
        opts = {"do_lower_case": norm.get("lowercase", True), "strip_accents": norm.get("strip_accents"),
                "tokenize_chinese_chars": norm.get("handle_chinese_chars", True),
                "unk_token": model.get("unk_token", "[UNK]"),
                "max_input_chars_per_word": model.get("max_input_chars_per_word", 100)}
        opts.update(options)
        return cls(vocab, **opts)

    # -- tokenization ------------------------------------------------------------------------------------
    def words(self, text: str) -> list[str]:
        """Steps 1-4: the words and punctuation marks of ``text``, before WordPiece."""
        chars = []
        for ch in text:
            if ch in "\x00\ufffd" or _is_control(ch):
                continue
            if _is_whitespace(ch):
                chars.append(" ")
            elif self.tokenize_chinese_chars and _is_cjk(ch):
                chars.append(f" {ch} ")
            else:
                chars.append(ch)
        out = []
        for word in unicodedata.normalize("NFC", "".join(chars)).split():
            if self.do_lower_case:
                word = word.lower()
            if self.strip_accents:
                word = _strip_accents(word)
            start = 0
            for i, ch in enumerate(word):
                if _is_punctuation(ch):
                    if i > start:
                        out.append(word[start:i])
                    out.append(ch)
                    start = i + 1
            if start < len(word):
                out.append(word[start:])
        return out

    def pieces(self, word: str) -> list[str]:
        """Step 5: the WordPiece split of one word (``[unk_token]`` when it cannot be split)."""
        if len(word) > self.max_input_chars_per_word:
            return [self.unk_token]
        out, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    break
                end -= 1
            if end == start:
                return [self.unk_token]
            out.append(piece)
            start = end
        return out

    def tokenize(self, text: str) -> list[str]:
        """The word pieces of ``text`` (special tokens written in it kept whole; none added)."""
        out, start, i = [], 0, 0
        while i < len(text):
            tok = next((t for t in self.specials if text.startswith(t, i)), None)
            if tok is None:
                i += 1
                continue
            out += [p for w in self.words(text[start:i]) for p in self.pieces(w)] + [tok]
            i = start = i + len(tok)
        return out + [p for w in self.words(text[start:]) for p in self.pieces(w)]

    def encode(self, text: str, max_length: int | None = None) -> list[int]:
        """``[CLS]`` + the ids of ``text``'s pieces + ``[SEP]``, at most ``max_length`` ids."""
        ids = [self.vocab[p] for p in self.tokenize(text)]
        if max_length is not None:
            if max_length < 2:
                raise InputError(f"max_length={max_length} leaves no room for [CLS] and [SEP]; give >= 2.")
            ids = ids[: max_length - 2]
        return [self.cls_id, *ids, self.sep_id]
