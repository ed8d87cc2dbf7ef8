"""Text inputs: the plain WordPiece tokenizer against Hugging Face's (tokenizers, transformers), the bundled
sentences through a folder's tokenizer, token-id checks, and the pooled embedding against transformers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from wkbnoise import InputError
from wkbnoise.runtime import load_model
from wkbnoise.text import (
    TokenBatch,
    WordPiece,
    bundled_sentences,
    encoder_outputs,
    load_tokenizer,
    sentence_inputs,
    token_batch,
)

FOLDER = Path(__file__).resolve().parent / "data" / "minilm_tiny"
VOCAB = FOLDER / "vocab.txt"
#: strings where tokenizers are easy to get wrong: accents, CJK, controls, odd spaces, long words, symbols
EDGE = ["Héllo WORLD!!", "naïve café — résumé", "中文字 and 日本", "tab\there\x00nul\u200bzero-width\ufffd",
        "a" * 101, "a" * 100, "20°C, 3.5%", "non\u00a0breaking\u3000space", "ﬁne ligature", "İstanbul",
        "x##y ## ##", "[CLS] literal", "", "   ", "don't stop-believing...", "Ünïcödé ÀÉÎ", "ok\r\nnext line"]


@pytest.fixture(scope="module")
def plain():
    return WordPiece.from_vocab_file(VOCAB)


@pytest.fixture(scope="module")
def model():
    return load_model(FOLDER / "model.safetensors")


def test_bundled_sentences():
    s = bundled_sentences()
    assert len(s) == 201 and len(set(s)) == 201
    assert all(5 <= len(x) <= 80 for x in s)


def test_wordpiece_by_hand(plain):
    """Greedy longest match first, ## continuation, whole word [UNK], punctuation split, accents stripped."""
    assert plain.tokenize("His naïve question") == ["his", "nai", "##ve", "quest", "##ion"]
    assert plain.tokenize("20°C.") == ["[UNK]", "."]  # ° is not in the vocabulary: the whole word
    assert plain.tokenize("don't") == ["do", "##n", "'", "t"]  # no "don" in this vocabulary
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "una", "##ffable", "##a"]
    wp = WordPiece(vocab)
    assert wp.tokenize("unaffable") == ["una", "##ffable"]  # longest first piece wins, not the best split
    assert wp.tokenize("unaffablex") == ["[UNK]"]
    assert wp.encode("un un un", max_length=4) == [2, 4, 4, 3]
    with pytest.raises(InputError, match="special token"):
        WordPiece(["a", "b"])


def _hf_fast_from_vocab(lowercase):
    tokenizers = pytest.importorskip("tokenizers")
    return tokenizers.BertWordPieceTokenizer(str(VOCAB), lowercase=lowercase)


@pytest.mark.parametrize("source", ["vocab.txt", "tokenizer.json"])
def test_plain_matches_tokenizers_on_bundled_sentences(plain, source):
    tokenizers = pytest.importorskip("tokenizers")
    ref = (tokenizers.Tokenizer.from_file(str(FOLDER / "tokenizer.json")) if source == "tokenizer.json"
           else _hf_fast_from_vocab(True))
    mine = plain if source == "vocab.txt" else WordPiece.from_tokenizer_json(FOLDER / "tokenizer.json")
    sents = bundled_sentences()
    ours = [mine.encode(s) for s in sents]
    theirs = [e.ids for e in ref.encode_batch(sents)]
    same = sum(a == b for a, b in zip(ours, theirs, strict=True))
    assert same == len(sents) == 201
    # the comparison is not trivial: many words are split, one is unknown
    pieces = [p for s in sents for p in mine.tokenize(s)]
    assert sum(p.startswith("##") for p in pieces) > 200 and pieces.count("[UNK]") == 1


@pytest.mark.parametrize("lowercase", [True, False])
def test_plain_matches_tokenizers_on_edge_strings(lowercase):
    ref = _hf_fast_from_vocab(lowercase)
    mine = WordPiece.from_vocab_file(VOCAB, do_lower_case=lowercase)
    for text in EDGE:
        assert mine.encode(text) == ref.encode(text).ids, text


def _transformers_tokenizers():
    transformers = pytest.importorskip("transformers")
    out = [("BertTokenizer", transformers.BertTokenizer(str(VOCAB), do_lower_case=True))]
    try:  # transformers 5: the pure-Python tokenizer (BasicTokenizer + WordpieceTokenizer)
        from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy
    except ImportError:
        pass
    else:
        out.append(("BertTokenizerLegacy", BertTokenizerLegacy(str(VOCAB), do_lower_case=True)))
    return out


def test_plain_matches_transformers(plain):
    sents = bundled_sentences()
    for name, ref in _transformers_tokenizers():
        theirs = [ref(s)["input_ids"] for s in sents]
        same = sum(plain.encode(s) == t for s, t in zip(sents, theirs, strict=True))
        assert same == 201, name
        for text in EDGE:
            assert plain.encode(text) == ref(text)["input_ids"], (name, text)


def test_shortest_match_would_be_caught(plain):
    """A WordPiece that takes the shortest first piece gives other ids on the bundled sentences."""
    class Shortest(WordPiece):
        def pieces(self, word):
            out, start = [], 0
            while start < len(word):
                end = start + 1
                while end <= len(word) and (word[start:end] if start == 0 else "##" + word[start:end]) not in self.vocab:
                    end += 1
                if end > len(word):
                    return [self.unk_token]
                out.append(word[start:end] if start == 0 else "##" + word[start:end])
                start = end
            return out

    wrong = Shortest(sorted(plain.vocab, key=plain.vocab.get))
    sents = bundled_sentences()
    assert sum(wrong.encode(s) != plain.encode(s) for s in sents) > 150


def test_sentence_inputs_backends_agree_and_match_transformers(model):
    from safetensors.numpy import load_file

    golden = load_file(str(FOLDER / "golden.safetensors"))
    plain = sentence_inputs(model, backend="plain")
    assert "plain WordPiece reader of vocab.txt" in plain.source
    assert plain.input_ids.shape == (201, int(plain.lengths.max()))
    assert np.array_equal(plain.attention_mask, (np.arange(plain.input_ids.shape[1]) < plain.lengths[:, None]))
    assert np.all(plain.input_ids[plain.attention_mask == 0] == 0) and not plain.token_type_ids.any()
    n, t = golden["input_ids"].shape  # transformers.BertTokenizer on the first 16 sentences, padded
    assert np.array_equal(plain.input_ids[:n, :t], golden["input_ids"])
    assert np.array_equal(plain.attention_mask[:n, :t], golden["attention_mask"])
    pytest.importorskip("tokenizers")
    fast = sentence_inputs(model, backend="tokenizers")
    assert "tokenizer.json" in fast.source
    for name in ("input_ids", "attention_mask", "token_type_ids"):
        assert np.array_equal(getattr(fast, name), getattr(plain, name))


def test_plain_reader_of_tokenizer_json_only(tmp_path, model):
    """A folder with tokenizer.json but no vocab.txt (and no tokenizers package in use)."""
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(FOLDER / name, tmp_path / name)
    tok = load_tokenizer(tmp_path, backend="plain")
    assert tok.name == "plain WordPiece reader of tokenizer.json"
    ref = sentence_inputs(model, backend="plain")
    assert tok.encode(bundled_sentences(), 128) == [list(r[m == 1]) for r, m in zip(ref.input_ids, ref.attention_mask,
                                                                                  strict=True)]
    doc = json.loads((tmp_path / "tokenizer.json").read_text())
    doc["model"]["type"] = "BPE"
    (tmp_path / "tokenizer.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="pip install tokenizers"):
        load_tokenizer(tmp_path, backend="plain")
    with pytest.raises(InputError, match="neither vocab.txt nor tokenizer.json"):
        load_tokenizer(tmp_path / "..", backend="plain")


def test_pooled_embedding_matches_transformers(model):
    """Tokenizer + encoder end to end: transformers' mean-pooled BertModel output on the first 16 sentences."""
    from safetensors.numpy import load_file

    golden = load_file(str(FOLDER / "golden.safetensors"))
    batch = sentence_inputs(model, backend="plain")[:16]
    pooled = encoder_outputs(model, batch, batch_size=5)  # chunks of 5, each cut to its longest sequence
    ref = golden["mean_pooled"]
    err = np.max(np.abs(pooled - ref)) / np.max(np.abs(ref))
    assert err <= 1e-4, err
    # a chunk cut to its longest sequence gives the padded full-width result
    _, full = model.encode(batch.input_ids, batch.attention_mask, batch.token_type_ids)
    np.testing.assert_allclose(pooled, full, rtol=1e-5, atol=1e-6)
    shifted = encoder_outputs(model, TokenBatch(batch.input_ids, batch.attention_mask, batch.token_type_ids + 1))
    assert np.max(np.abs(shifted - ref)) / np.max(np.abs(ref)) > 1e-2  # the check sees a wrong segment id


@pytest.mark.parametrize("tensors, fragments", [
    ({"ids": np.zeros((2, 3), np.int64)}, ["holds ids int64 [2, 3]", "input_ids (int64/int32 [N, T])"]),
    ({"images": np.zeros((2, 1, 4, 4), np.uint8)}, ["holds images uint8 [2, 1, 4, 4]", "an encoder reads"]),
    ({"input_ids": np.zeros((2, 3), np.float32)}, ["input_ids has dtype float32", "int64 or int32"]),
    ({"input_ids": np.zeros(3, np.int64)}, ["input_ids has shape [3]", "(N, T)"]),
    ({"input_ids": np.zeros((2, 3), np.int64), "attention_mask": np.ones((2, 4), np.int64)},
     ["attention_mask must have the shape of input_ids [2, 3]"]),
    ({"input_ids": np.full((2, 3), 2356, np.int32)}, ["input_ids has values in [2356, 2356]", "[0, 2356)", "vocab_size"]),
    ({"input_ids": np.zeros((2, 3), np.int64), "attention_mask": np.full((2, 3), 2, np.int64)},
     ["attention_mask has values in [2, 2]"]),
    ({"input_ids": np.zeros((2, 3), np.int64), "token_type_ids": np.full((2, 3), 2, np.int64)},
     ["token_type_ids", "type_vocab_size"]),
    ({"input_ids": np.zeros((1, 129), np.int64)}, ["129 tokens", "max_position_embeddings=128"]),
    ({"input_ids": np.zeros((0, 3), np.int64)}, ["no sequence"]),
])
def test_token_batch_refuses_with_one_line(model, tensors, fragments):
    with pytest.raises(InputError) as info:
        token_batch(tensors, model, source="inputs='t.safetensors'")
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("inputs='t.safetensors'")
    for f in fragments:
        assert f in msg, (f, msg)


def test_token_batch_defaults_and_slices(model):
    b = token_batch({"input_ids": np.array([[101, 5, 102]], np.int32)}, model)
    assert b.input_ids.dtype == np.int64 and b.attention_mask.tolist() == [[1, 1, 1]]
    assert b.token_type_ids.tolist() == [[0, 0, 0]] and len(b[:0]) == 0
    with pytest.raises(InputError, match="slices"):
        b[0]
