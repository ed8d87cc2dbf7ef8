"""Make the BERT golden reference of ``tests/test_bert_golden.py`` with Hugging Face ``transformers``.

Builds a small randomly initialised ``transformers.BertModel`` from a config (no hub download), saves it
the way Hugging Face does (``save_pretrained``: ``model.safetensors`` with ``BertModel`` key names and
``config.json``) into ``tests/data/bert_tiny/``, and writes fixed inputs with padding plus the model's
outputs into ``tests/data/bert_tiny/golden.safetensors``:

- ``input_ids``, ``attention_mask``, ``token_type_ids``: int64 (N, T);
- ``last_hidden_state``: float32 (N, T, hidden), ``BertModel(...).last_hidden_state``;
- ``mean_pooled``: float32 (N, hidden), the mean of ``last_hidden_state`` over the tokens whose mask is 1.

The default initialisation (weights N(0, 0.02), LayerNorm weight 1 and bias 0, biases 0) would leave the
biases and LayerNorm parameters untested and the attention nearly uniform, so every parameter is redrawn
(weights N(0, 0.2), biases N(0, 0.1), LayerNorm weights 1 + N(0, 0.1)) before saving. The test needs
neither torch nor transformers; rerun this script (``python tests/data/make_bert_golden.py``, needs
``pip install transformers``) only to change the reference.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
import transformers
from safetensors.numpy import save_file

OUT = Path(__file__).resolve().parent / "bert_tiny"
SEED = 1234
CONFIG = {
    "vocab_size": 100,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "max_position_embeddings": 32,
    "type_vocab_size": 2,
    "hidden_act": "gelu",  # exact erf GELU
    "hidden_dropout_prob": 0.1,  # inactive in eval mode
    "attention_probs_dropout_prob": 0.1,
    "layer_norm_eps": 1e-12,
}
N_SEQ, N_TOK = 4, 12
LENGTHS = (12, 9, 5, 1)  # real tokens per sequence; the rest is padding


def build_model() -> transformers.BertModel:
    """The random tiny ``BertModel`` (eval mode, eager attention), every parameter redrawn from ``SEED``."""
    torch.manual_seed(SEED)
    config = transformers.BertConfig(**CONFIG)
    config._attn_implementation = "eager"
    model = transformers.BertModel(config, add_pooling_layer=True)
    gen = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, prm in model.named_parameters():
            noise = torch.randn(prm.shape, generator=gen)
            if "LayerNorm.weight" in name:
                prm.copy_(1.0 + 0.1 * noise)
            elif name.endswith(".bias"):
                prm.copy_(0.1 * noise)
            else:
                prm.copy_(0.2 * noise)
    return model.eval()


def inputs() -> dict[str, np.ndarray]:
    """Fixed token ids, a padding mask of ``LENGTHS`` and two-segment token types (int64 (N, T))."""
    rng = np.random.default_rng(SEED)
    ids = rng.integers(1, CONFIG["vocab_size"], (N_SEQ, N_TOK)).astype(np.int64)
    mask = (np.arange(N_TOK)[None, :] < np.array(LENGTHS)[:, None]).astype(np.int64)
    ids[mask == 0] = 0  # [PAD]
    types = np.zeros((N_SEQ, N_TOK), np.int64)
    for i, n in enumerate(LENGTHS):
        types[i, n // 2:n] = 1  # second segment
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def main() -> None:
    """Write ``bert_tiny/model.safetensors``, ``config.json`` and ``golden.safetensors``."""
    model = build_model()
    inp = inputs()
    with torch.no_grad():
        t = {k: torch.from_numpy(v) for k, v in inp.items()}
        hidden = model(**t).last_hidden_state
        m = t["attention_mask"].to(hidden.dtype)[..., None]
        pooled = (hidden * m).sum(dim=1) / m.sum(dim=1)
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        for name in ("model.safetensors", "config.json"):
            shutil.copyfile(Path(tmp) / name, OUT / name)
    golden = dict(inp)
    golden["last_hidden_state"] = hidden.numpy().astype(np.float32)
    golden["mean_pooled"] = pooled.numpy().astype(np.float32)
    meta = {"transformers": transformers.__version__, "torch": torch.__version__, "seed": str(SEED),
            "config": json.dumps(CONFIG)}
    save_file(golden, str(OUT / "golden.safetensors"), metadata=meta)


if __name__ == "__main__":
    main()
