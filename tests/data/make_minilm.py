"""Make ``tests/data/minilm_tiny/``: a small MiniLM-style Hugging Face folder, as a user would download one.

The folder holds what a sentence-embedding checkpoint holds: ``config.json`` and ``model.safetensors``
(``BertModel.save_pretrained``, float16 to stay small, pooler included), ``vocab.txt``, ``tokenizer.json``
(``tokenizers``' BERT WordPiece pipeline over that vocabulary) and ``tokenizer_config.json`` (uncased).
The weights are random (no hub download), 2 layers, hidden 64, 4 heads, intermediate 256.

The vocabulary is built here, deterministically, from the sentences bundled with wkbnoise, laid out like
BERT's: ``[PAD]``, ``[unused0..19]``, ``[UNK]``, ``[CLS]``, ``[SEP]``, ``[MASK]``, the characters and their
``##`` forms, common suffixes, the words seen twice or more, the words seen once split in two pieces (so
WordPiece has to split them), and every letter pair as a word start and as a ``##`` piece (2,000+ entries,
so greedy longest-match has many wrong candidates to skip). ``°`` is left out on purpose: ``20°c`` becomes
one ``[UNK]``.

``golden.safetensors`` holds transformers' view of the first 16 bundled sentences: the ids from
``transformers.BertTokenizer`` on this folder, and ``BertModel``'s mean-pooled embedding of them
(float32, from the float16 weights widened), so the tests check tokenizer + encoder end to end without
torch. Rerun with ``python tests/data/make_minilm.py`` (needs torch, transformers, tokenizers).
"""

from __future__ import annotations

import json
import shutil
import string
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import tokenizers
import torch
import transformers
from safetensors.numpy import save_file

from wkbnoise.text import WordPiece, bundled_sentences

OUT = Path(__file__).resolve().parent / "minilm_tiny"
SEED = 2024
N_GOLDEN = 16
CONFIG = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 256,
          "max_position_embeddings": 128, "type_vocab_size": 2, "hidden_act": "gelu", "layer_norm_eps": 1e-12,
          "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1}
SUFFIXES = ("s", "es", "ed", "ing", "ly", "er", "ers", "est", "tion", "ness", "ment", "ful", "y", "en")


def build_vocab() -> list[str]:
    """The vocabulary in id order (see the module docstring)."""
    letters = string.ascii_lowercase
    splitter = WordPiece(["[PAD]", "[UNK]", "[CLS]", "[SEP]"])  # only its words() is used
    counts = Counter(w for s in bundled_sentences() for w in splitter.words(s))
    vocab = ["[PAD]"] + [f"[unused{i}]" for i in range(20)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = [c for c in string.punctuation + string.digits + letters]
    vocab += chars + ["##" + c for c in string.digits + letters] + ["##" + s for s in SUFFIXES]
    for word, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if "°" in word:
            continue
        if count >= 2 or len(word) < 5:
            vocab.append(word)
        else:
            cut = (len(word) + 1) // 2
            vocab += [word[:cut], "##" + word[cut:]]
    vocab += [a + b for a in letters for b in letters] + ["##" + a + b for a in letters for b in letters]
    return list(dict.fromkeys(vocab))  # first occurrence keeps its id


def build_model(vocab_size: int) -> transformers.BertModel:
    """A random ``BertModel`` (eval mode, eager attention); weights N(0, 0.1), biases N(0, 0.05),
    LayerNorm weights 1 + N(0, 0.1), drawn from ``SEED``."""
    torch.manual_seed(SEED)
    config = transformers.BertConfig(vocab_size=vocab_size, **CONFIG)
    config._attn_implementation = "eager"
    model = transformers.BertModel(config, add_pooling_layer=True)
    gen = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, prm in model.named_parameters():
            noise = torch.randn(prm.shape, generator=gen)
            if "LayerNorm.weight" in name:
                prm.copy_(1.0 + 0.1 * noise)
            elif name.endswith(".bias"):
                prm.copy_(0.05 * noise)
            else:
                prm.copy_(0.1 * noise)
    return model.half().eval()


def main() -> None:
    """Write the folder and its golden file."""
    vocab = build_vocab()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tok_cfg = {"do_lower_case": True, "strip_accents": None, "tokenize_chinese_chars": True,
               "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]",
               "mask_token": "[MASK]", "model_max_length": 128, "tokenizer_class": "BertTokenizer"}
    (OUT / "tokenizer_config.json").write_text(json.dumps(tok_cfg, indent=2) + "\n")
    fast = tokenizers.BertWordPieceTokenizer(str(OUT / "vocab.txt"), lowercase=True)
    fast.save(str(OUT / "tokenizer.json"))
    model = build_model(len(vocab))
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        for name in ("model.safetensors", "config.json"):
            shutil.copyfile(Path(tmp) / name, OUT / name)
    hf_tok = transformers.BertTokenizer.from_pretrained(str(OUT))
    enc = hf_tok(bundled_sentences()[:N_GOLDEN], padding=True, return_tensors="np")
    reference = transformers.BertModel.from_pretrained(str(OUT), attn_implementation="eager").float().eval()
    with torch.no_grad():
        t = {k: torch.from_numpy(np.asarray(enc[k], dtype=np.int64)) for k in ("input_ids", "attention_mask")}
        hidden = reference(**t).last_hidden_state
        m = t["attention_mask"].to(hidden.dtype)[..., None]
        pooled = ((hidden * m).sum(dim=1) / m.sum(dim=1)).numpy().astype(np.float32)
    golden = {"input_ids": np.asarray(enc["input_ids"], np.int64),
              "attention_mask": np.asarray(enc["attention_mask"], np.int64), "mean_pooled": pooled}
    meta = {"transformers": transformers.__version__, "torch": torch.__version__, "tokenizers": tokenizers.__version__,
            "seed": str(SEED), "sentences": str(N_GOLDEN)}
    save_file(golden, str(OUT / "golden.safetensors"), metadata=meta)


if __name__ == "__main__":
    main()
