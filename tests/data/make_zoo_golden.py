"""Make ``tests/data/zoo_golden_logits.safetensors``: PyTorch float logits of the zoo models.

For every zoo weight file present in ``wkbnoise/zoo/`` the PyTorch module is rebuilt with
:mod:`wkbnoise.zoo.train_models` (architecture and config from the file's metadata), its state dict loaded
with ``safetensors.torch.load_file``, and its logits on the first ``N_IMAGES`` bundled test images
(``(uint8 / 255 - 0.1307) / 0.3081``) stored as float32 (N_IMAGES, 10) under the model's name.

``__metadata__`` records, per model, ``sha256.<name>``: the SHA-256 of the weight file the logits came
from (``tests/test_zoo_golden.py`` skips a model whose weights were retrained since, and fails one whose
hash matches but whose logits do not), and ``images_sha256``: the SHA-256 of the input pixels.
A model whose weight file is absent keeps its previous entry, so the script can be rerun as models are
trained. Run ``python tests/data/make_zoo_golden.py`` (needs torch: the ``train`` extra).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import load_file, save_file
from safetensors.torch import load_file as load_torch_file

from wkbnoise import zoo
from wkbnoise.zoo import train_models

OUT = Path(__file__).resolve().parent / "zoo_golden_logits.safetensors"
N_IMAGES = 64
MEAN, STD = 0.1307, 0.3081


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def images() -> np.ndarray:
    """The first ``N_IMAGES`` bundled test images, uint8 (N, 1, 28, 28)."""
    return np.ascontiguousarray(zoo.test_set()[0][:N_IMAGES])


def torch_logits(path: Path, x_uint8: np.ndarray) -> np.ndarray:
    """Float32 logits of the PyTorch module rebuilt from the weight file ``path``."""
    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata()
    module = train_models.build(meta["wkbnoise.arch"], json.loads(meta["wkbnoise.config"]))
    module.load_state_dict(load_torch_file(str(path)), strict=True)
    module.eval()
    x = (torch.from_numpy(x_uint8.astype(np.float32)) / 255.0 - MEAN) / STD
    with torch.no_grad():
        return module(x).numpy().astype(np.float32)


def main() -> None:
    """Write the golden file for the zoo models whose weights exist (older entries kept for the rest)."""
    torch.set_num_threads(1)
    x = images()
    logits, meta = {}, {}
    if OUT.is_file():  # keep the entries of models not present in this checkout
        with safe_open(str(OUT), framework="np") as fh:
            old_meta = fh.metadata() or {}
        for name, arr in load_file(str(OUT)).items():
            if f"sha256.{name}" in old_meta:
                logits[name], meta[f"sha256.{name}"] = arr, old_meta[f"sha256.{name}"]
    for name in zoo.names():
        path = zoo.ZOO_DIR / f"{name}.safetensors"
        if not path.is_file():
            continue
        logits[name] = torch_logits(path, x)
        meta[f"sha256.{name}"] = sha256(path)
    meta.update({"n_images": str(N_IMAGES), "images_sha256": hashlib.sha256(x.tobytes()).hexdigest(),
                 "preprocess": json.dumps({"mean": MEAN, "std": STD}), "torch": torch.__version__})
    save_file({k: logits[k] for k in zoo.names() if k in logits}, str(OUT), metadata=meta)


if __name__ == "__main__":
    main()
