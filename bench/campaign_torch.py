"""A Monte Carlo bit-flip campaign written by hand in PyTorch, as a careful user would write it.

The campaign of ``bench/run.py`` part 3: the weights of every conv and linear layer are quantized
once (INT8, per tensor, symmetric, two's complement; BatchNorm folded into the conv first, as the
wkbnoise runtime does), then each trial draws an independent Bernoulli(p) flip for every bit of
every code (one vectorised ``torch.rand`` per layer), XORs the mask into the codes, dequantizes
into the model's weight tensors and runs the 1,000 test images through the model under
``torch.no_grad()``. It is an exact per-bit fault model, the same one as
``wkbnoise.evaluation.campaign.monte_carlo_accuracy`` (with a different random stream).

This module also holds the helpers the other campaigns share: building the zoo's PyTorch model
from its safetensors file (or with random weights while the zoo is not trained yet), folding BN,
and the INT8 quantizer.

Run alone: ``python bench/campaign_torch.py lenet5 --p 0.01 --trials 10``.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))
ZOO_DIR = ROOT / "wkbnoise" / "zoo"
MEAN, STD = 0.1307, 0.3081


# --------------------------------------------------------------------------------------------- models
def model_file(name: str, scratch_dir: str | Path, *, random_seed: int = 0) -> tuple[Path, str]:
    """The weight file every implementation of the benchmark loads for zoo model ``name``.

    ``wkbnoise/zoo/<name>.safetensors`` when the zoo is trained; otherwise the architecture with
    seeded random weights (and random BN statistics, so that folding is exercised), exported in the
    zoo format to ``scratch_dir``, so that the harness runs and every implementation still reads the
    very same weights.

    Returns
    -------
    (Path, str)
        The file and ``"zoo"`` or ``"random"``.
    """
    path = ZOO_DIR / f"{name}.safetensors"
    if path.exists():
        return path, "zoo"
    from wkbnoise.zoo.train_models import DEFAULT_CONFIGS, build, export

    torch.manual_seed(random_seed)
    model = build(name, DEFAULT_CONFIGS[name])
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.8, 1.2)
                m.bias.uniform_(-0.1, 0.1)
    out = Path(scratch_dir) / f"{name}-random.safetensors"
    export(model.eval(), out, name, DEFAULT_CONFIGS[name], None)
    return out, "random"


def build_torch_model(path: str | Path) -> nn.Module:
    """The PyTorch module of a zoo-format weight file, in eval mode, BN folded, no grad."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from wkbnoise.zoo.train_models import build

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    model = build(meta["wkbnoise.arch"], json.loads(meta["wkbnoise.config"]))
    model.load_state_dict(load_file(str(path)))
    return fold_batchnorm(model.eval())


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every BatchNorm2d into the Conv2d registered just before it (in float64); BN -> Identity.

    Works on a deep copy; in the zoo every BN directly follows its conv among its parent's children
    (Sequential entries, ``conv1``/``bn1`` attribute pairs).
    """
    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        children = list(parent.named_children())
        for (_, conv), (bn_name, bn) in zip(children, children[1:]):
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                s = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
                w = conv.weight.double() * s.view(-1, 1, 1, 1)
                b0 = conv.bias.double() if conv.bias is not None else torch.zeros_like(s)
                b = (b0 - bn.running_mean.double()) * s + bn.bias.double()
                conv.weight = nn.Parameter(w.float(), requires_grad=False)
                conv.bias = nn.Parameter(b.float(), requires_grad=False)
                setattr(parent, bn_name, nn.Identity())
    for prm in model.parameters():
        prm.requires_grad_(False)
    return model.eval()


def quant_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The conv and linear modules (the quantized layers), in ``model.modules()`` order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def quantize_int8(w: torch.Tensor, bits: int = 8) -> tuple[torch.Tensor, float]:
    """Per-tensor symmetric quantization: ``scale = float32(max|w| / q_max)``, ``q = clip(rint(w / scale),
    -q_max, q_max)`` (computed in float64), codes as int8 two's complement.

    The same rule as ``wkbnoise.quant.quantize`` (bench/run.py checks that the codes agree).

    Returns
    -------
    (torch.Tensor, float)
        int8 codes (same shape as ``w``) and the scale.
    """
    qmax = 2 ** (bits - 1) - 1
    amax = float(w.abs().max())
    scale = float(np.float32(amax / qmax))
    if scale == 0.0:
        return torch.zeros(w.shape, dtype=torch.int8), 0.0
    codes = torch.round(w.double() / scale).clamp_(-qmax, qmax).to(torch.int8)
    return codes, scale


def preprocess(images_uint8: np.ndarray) -> torch.Tensor:
    """``(uint8 / 255 - mean) / std`` as float32 NCHW (the zoo's input spec)."""
    x = torch.from_numpy(np.ascontiguousarray(images_uint8)).float()
    return ((x / 255.0 - MEAN) / STD).contiguous()


def load_images(n: int = 1000, *, random_seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """The bundled test set (``wkbnoise/zoo/mnist_test.safetensors``), or random images if absent."""
    path = ZOO_DIR / "mnist_test.safetensors"
    if path.exists():
        from safetensors.numpy import load_file

        d = load_file(str(path))
        return d["images"][:n], d["labels"][:n].astype(np.int64), "mnist_test"
    rng = np.random.default_rng(random_seed)
    images = rng.integers(0, 256, size=(n, 1, 28, 28), dtype=np.uint8)
    return images, rng.integers(0, 10, size=n).astype(np.int64), "random"


# --------------------------------------------------------------------------------------------- campaign
def bernoulli_mask(n: int, bits: int, p: float, gen: torch.Generator) -> torch.Tensor:
    """uint8[n] XOR masks: bit k of each set with probability ``p``, independently (``torch.rand < p``)."""
    hits = torch.rand((n, bits), generator=gen) < p
    shifts = torch.arange(bits, dtype=torch.uint8)
    return (hits.to(torch.uint8) << shifts).sum(dim=1, dtype=torch.uint8)


class Campaign:
    """A campaign on a folded PyTorch model and a fixed image set; subclasses define ``run``.

    Parameters
    ----------
    model : nn.Module
        Folded float model (see :func:`build_torch_model`); it is copied, never mutated.
    images : ndarray of uint8, [N, 1, 28, 28]
    labels : ndarray of int64, [N]
    bits : int
        Code width B (8: int8 codes).
    """

    def __init__(self, model: nn.Module, images: np.ndarray, labels: np.ndarray, bits: int = 8):
        self.model = model
        self.x = preprocess(images)
        self.y = torch.from_numpy(labels)
        self.bits = bits

    def accuracy(self, logits: torch.Tensor) -> float:
        """Top-1 accuracy of ``logits`` against the labels [fraction]."""
        return (logits.argmax(dim=1) == self.y).double().mean().item()

    def run(self, p: float, trials: int, seed: int = 0) -> np.ndarray:
        raise NotImplementedError


class TorchCampaign(Campaign):
    """Exact per-bit Monte Carlo campaign in plain PyTorch (see the module docstring)."""

    def run(self, p: float, trials: int, seed: int = 0) -> np.ndarray:
        """Accuracies of ``trials`` trials; every bit of every code flips independently with ``p``.

        The per-campaign setup (copy the model, quantize once) is part of the call, as it is in
        ``monte_carlo_accuracy``.
        """
        model = copy.deepcopy(self.model)
        layers = []
        for _, m in quant_modules(model):
            codes, scale = quantize_int8(m.weight.data, self.bits)
            layers.append((m, codes.reshape(-1), scale))
        gen = torch.Generator().manual_seed(seed)
        acc = np.empty(trials)
        with torch.no_grad():
            for t in range(trials):
                for m, codes, scale in layers:
                    mask = bernoulli_mask(codes.numel(), self.bits, p, gen)  # Bernoulli per bit
                    faulty = codes ^ mask.view(torch.int8)  # XOR the flips into the stored codes
                    m.weight.copy_((faulty.to(torch.float32) * scale).view_as(m.weight))
                logits = model(self.x)
                acc[t] = self.accuracy(logits)
        return acc


def cli_main(campaigns: dict, doc: str, default: str) -> None:  # pragma: no cover - manual use
    """``python bench/<file>.py MODEL [--impl NAME] [--p P] [--trials T] [--threads N]``: time one campaign."""
    import fire

    def command(model: str, impl: str = default, p: float = 0.01, trials: int = 5, threads: int | None = None):
        if impl not in campaigns:
            raise SystemExit(f"--impl={impl!r}: choose from {sorted(campaigns)}")
        _time_campaign(campaigns, model, impl, float(p), int(trials), threads or torch.get_num_threads())

    command.__doc__ = doc.splitlines()[0]
    fire.Fire(command)


def _time_campaign(campaigns, model, impl, p, trials, threads):  # pragma: no cover - manual use
    import tempfile
    import time
    from types import SimpleNamespace

    a = SimpleNamespace(model=model, impl=impl, p=p, trials=trials, threads=threads)
    torch.set_num_threads(a.threads)
    path, origin = model_file(a.model, tempfile.mkdtemp())
    images, labels, src = load_images()
    camp = campaigns[a.impl](build_torch_model(path), images, labels)
    camp.run(a.p, 1)
    t0 = time.perf_counter()
    acc = camp.run(a.p, a.trials)
    dt = time.perf_counter() - t0
    print(f"{a.impl} {a.model} ({origin} weights, {src} images) p={a.p}: {a.trials / dt:.2f} trials/s, "
          f"accuracy mean {acc.mean():.4f} (min {acc.min():.4f}, max {acc.max():.4f})")


if __name__ == "__main__":
    cli_main({"torch-hand": TorchCampaign}, __doc__, "torch-hand")
