"""Make the Hugging Face golden references of ``tests/test_huggingface.py`` with ``transformers``.

Writes two tiny random checkpoints the way Hugging Face saves them (``save_pretrained``: ``config.json`` +
``model.safetensors``), each with ``golden.safetensors`` holding fixed inputs and the model's outputs:

- ``tests/data/vit_tiny/``: a ``ViTForImageClassification`` (16x16 RGB images, patch 4, 2 layers of width
  32, 5 classes) and a ``preprocessor_config.json`` with ImageNet's mean and std; golden ``images`` (uint8
  N, 3, 16, 16), ``pixel_values`` ((images / 255 - mean) / std), ``logits`` and ``last_hidden_state``
  (the ViT encoder's output after its final LayerNorm);
- ``tests/data/bert_cls_tiny/``: a ``BertForSequenceClassification`` (3 labels) on the config of
  ``bert_tiny``; golden ``input_ids``, ``attention_mask``, ``token_type_ids``, ``logits``.

Every parameter is redrawn (weights N(0, 0.2), biases N(0, 0.1), LayerNorm weights 1 + N(0, 0.1)) so none is
left at a trivial value. The tests need neither torch nor transformers; rerun this script
(``python tests/data/make_hf_golden.py``, needs ``pip install transformers``) only to change the reference.
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

DATA = Path(__file__).resolve().parent
SEED = 4321
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
VIT = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
       "image_size": 16, "patch_size": 4, "num_channels": 3, "hidden_act": "gelu", "layer_norm_eps": 1e-12,
       "num_labels": 5, "qkv_bias": True}


def redraw(model, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, prm in model.named_parameters():
            noise = torch.randn(prm.shape, generator=gen)
            if "LayerNorm.weight" in name or "layernorm" in name and name.endswith("weight"):
                prm.copy_(1.0 + 0.1 * noise)
            elif name.endswith(".bias"):
                prm.copy_(0.1 * noise)
            else:
                prm.copy_(0.2 * noise)
    return model.eval()


def save(model, out: Path, extra: dict | None = None):
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        out.mkdir(exist_ok=True)
        for name in ("config.json", "model.safetensors"):
            shutil.copyfile(Path(tmp) / name, out / name)
    for name, d in (extra or {}).items():
        (out / name).write_text(json.dumps(d, indent=2) + "\n", encoding="utf-8")


def make_vit():
    torch.manual_seed(SEED)
    config = transformers.ViTConfig(**VIT)
    config._attn_implementation = "eager"
    model = redraw(transformers.ViTForImageClassification(config), SEED)
    out = DATA / "vit_tiny"
    save(model, out, {"preprocessor_config.json": {"do_normalize": True, "do_rescale": True,
                                                   "rescale_factor": 1 / 255, "image_mean": MEAN,
                                                   "image_std": STD, "do_resize": False}})
    rng = np.random.default_rng(SEED)
    images = rng.integers(0, 256, (3, 3, 16, 16)).astype(np.uint8)
    pixels = ((images / 255.0 - np.array(MEAN)[:, None, None]) / np.array(STD)[:, None, None]).astype(np.float32)
    with torch.no_grad():
        logits = model(pixel_values=torch.from_numpy(pixels)).logits.numpy()
        hidden = model.vit(pixel_values=torch.from_numpy(pixels)).last_hidden_state.numpy()
    save_file({"images": images, "pixel_values": pixels, "logits": logits, "last_hidden_state": hidden},
              str(out / "golden.safetensors"), metadata={"transformers": transformers.__version__})


def make_bert_cls():
    cfg = json.loads((DATA / "bert_tiny" / "config.json").read_text(encoding="utf-8"))
    keep = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
            "max_position_embeddings", "type_vocab_size", "hidden_act", "layer_norm_eps")
    torch.manual_seed(SEED)
    config = transformers.BertConfig(**{k: cfg[k] for k in keep}, num_labels=3)
    config._attn_implementation = "eager"
    model = redraw(transformers.BertForSequenceClassification(config), SEED + 1)
    out = DATA / "bert_cls_tiny"
    save(model, out)
    rng = np.random.default_rng(SEED)
    ids = rng.integers(1, cfg["vocab_size"], (3, 10)).astype(np.int64)
    mask = (np.arange(10)[None] < np.array([10, 6, 2])[:, None]).astype(np.int64)
    ids[mask == 0] = 0
    types = np.zeros_like(ids)
    types[0, 5:] = 1
    with torch.no_grad():
        logits = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                       token_type_ids=torch.from_numpy(types)).logits.numpy()
    save_file({"input_ids": ids, "attention_mask": mask, "token_type_ids": types, "logits": logits},
              str(out / "golden.safetensors"), metadata={"transformers": transformers.__version__})


if __name__ == "__main__":
    make_vit()
    make_bert_cls()
