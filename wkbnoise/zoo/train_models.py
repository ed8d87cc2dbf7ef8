"""PyTorch definitions of the five zoo models, their builders, and the safetensors exporter.

This module (with :mod:`wkbnoise.zoo.train`) is the only place in the package that imports
``torch``; it needs the ``train`` extra (``pip install wkbnoise[train]``). The module names below
are the tensor names of the exported files, and they are the contract of docs/internals.md
("Zoo architectures", "Weight-file format"): the NumPy runtime rebuilds each network from the
file's metadata and must reproduce these modules' logits.

Example
-------
>>> model = build("lenet5", DEFAULT_CONFIGS["lenet5"])        # doctest: +SKIP
>>> export(model.eval(), "lenet5.safetensors", "lenet5", DEFAULT_CONFIGS["lenet5"], 0.99)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ARCHS",
    "DEFAULT_CONFIGS",
    "INPUT_SPEC",
    "LeNet5",
    "VGG",
    "ResNet20",
    "MobileNetV2",
    "ViT",
    "build",
    "export",
    "metadata",
]

#: Model input: ``(uint8 / 255 - mean) / std`` on [N, 1, 28, 28] images.
INPUT_SPEC = {"shape": [1, 28, 28], "mean": 0.1307, "std": 0.3081}

#: Architecture name -> the config written into ``wkbnoise.config`` (docs/internals.md).
DEFAULT_CONFIGS: dict[str, dict] = {
    "lenet5": {},
    "vgg": {"stages": [[32, 32], [64, 64], [128]], "hidden": 128},
    "resnet20": {"widths": [16, 32, 64], "blocks": 3},
    "mobilenetv2": {
        "stem": 16,
        "blocks": [[1, 16, 1, 1], [4, 24, 2, 2], [4, 32, 2, 2], [4, 64, 2, 1]],
        "head": 128,
    },
    "vit": {"patch": 7, "dim": 64, "depth": 4, "heads": 4, "mlp": 128},
}

NUM_CLASSES = 10
IMAGE_SIZE = 28


# --------------------------------------------------------------------------------------------- LeNet-5
class LeNet5(nn.Module):
    """conv-pool-conv-pool-fc-fc-fc; keys ``conv1``, ``conv2``, ``fc1``, ``fc2``, ``fc3``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # 28 -> 14
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # 14 -> 10 -> 5
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


# --------------------------------------------------------------------------------------------- VGG
class VGG(nn.Module):
    """3x3 conv stacks with BN and ReLU, a 2x2 max-pool after each stage, and an fc head.

    Keys: ``features.{i}`` (Sequential of conv, BN, ReLU per entry, MaxPool2d per stage) and
    ``classifier.0`` / ``classifier.3`` (Linear, ReLU, Dropout, Linear).
    """

    def __init__(self, stages: list[list[int]], hidden: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in, size = 1, IMAGE_SIZE
        for stage in stages:
            for c in stage:
                layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
                c_in = c
            layers.append(nn.MaxPool2d(2))
            size //= 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Linear(c_in * size * size, hidden), nn.ReLU(), nn.Dropout(0.3), nn.Linear(hidden, NUM_CLASSES)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


# --------------------------------------------------------------------------------------------- ResNet-20
class BasicBlock(nn.Module):
    """conv3x3(stride) - BN - ReLU - conv3x3 - BN, plus shortcut, then ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )
        else:
            self.shortcut = nn.Sequential()  # identity: no tensors

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet20(nn.Module):
    """CIFAR-style ResNet-20 on 1x28x28: ``conv1``/``bn1``, ``layer1..3`` of BasicBlocks, ``fc``."""

    def __init__(self, widths: list[int], blocks: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        c_in = widths[0]
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            layer = []
            for b in range(blocks):
                layer.append(BasicBlock(c_in, w, stride if b == 0 else 1))
                c_in = w
            setattr(self, f"layer{i + 1}", nn.Sequential(*layer))
        self.n_layers = len(widths)
        self.fc = nn.Linear(c_in, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        for i in range(self.n_layers):
            x = getattr(self, f"layer{i + 1}")(x)
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(torch.flatten(x, 1))


# --------------------------------------------------------------------------------------------- MobileNetV2
class InvertedResidual(nn.Module):
    """``expand`` (1x1, absent when t = 1), ``dw`` (depthwise 3x3), ``project`` (1x1, linear)."""

    def __init__(self, c_in: int, c_out: int, stride: int, t: int) -> None:
        super().__init__()
        hidden = c_in * t
        if t != 1:
            self.expand = nn.Sequential(
                nn.Conv2d(c_in, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()
            )
        else:
            self.expand = None
        self.dw = nn.Sequential(
            nn.Conv2d(hidden, hidden, 3, stride=stride, padding=1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(),
        )
        self.project = nn.Sequential(nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.expand(x) if self.expand is not None else x
        out = self.project(self.dw(out))
        return x + out if self.residual else out


class MobileNetV2(nn.Module):
    """Reduced MobileNetV2: ``stem``, ``blocks.{i}`` over all repeats, ``head``, ``classifier``."""

    def __init__(self, stem: int, blocks: list[list[int]], head: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, stem, 3, padding=1, bias=False), nn.BatchNorm2d(stem), nn.ReLU6())
        layers = []
        c_in = stem
        for t, c, n, s in blocks:
            for r in range(n):
                layers.append(InvertedResidual(c_in, c, s if r == 0 else 1, t))
                c_in = c
        self.blocks = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Conv2d(c_in, head, 1, bias=False), nn.BatchNorm2d(head), nn.ReLU6())
        self.classifier = nn.Linear(head, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.blocks(self.stem(x)))
        x = F.adaptive_avg_pool2d(x, 1)
        return self.classifier(torch.flatten(x, 1))


# --------------------------------------------------------------------------------------------- ViT
class Attention(nn.Module):
    """Multi-head self-attention: ``qkv`` Linear(d, 3d) split as (T, 3, heads, d/heads), ``proj``."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        qkv = self.qkv(x).reshape(n, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # each [N, heads, T, head_dim]
        attn = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(self.head_dim), dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(n, t, d)
        return self.proj(out)


class Mlp(nn.Module):
    """``fc1`` - GELU (exact erf) - ``fc2``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm encoder block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(self, dim: int, heads: int, mlp: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, mlp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """ViT-style encoder: 7x7 patches (16 tokens) + cls token, pre-norm blocks, ``head`` on cls."""

    def __init__(self, patch: int, dim: int, depth: int, heads: int, mlp: int) -> None:
        super().__init__()
        n_tokens = (IMAGE_SIZE // patch) ** 2
        self.patch_embed = nn.Conv2d(1, dim, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n_tokens + 1, dim))
        self.blocks = nn.Sequential(*[Block(dim, heads, mlp) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, NUM_CLASSES)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # [N, 16, dim], row-major patch order
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


ARCHS: dict[str, type[nn.Module]] = {
    "lenet5": LeNet5,
    "vgg": VGG,
    "resnet20": ResNet20,
    "mobilenetv2": MobileNetV2,
    "vit": ViT,
}


def build(arch: str, config: dict | None = None) -> nn.Module:
    """Build a zoo network from its architecture name and config (``DEFAULT_CONFIGS[arch]`` if None)."""
    if arch not in ARCHS:
        raise ValueError(f"arch={arch!r} is not a zoo architecture; use one of {sorted(ARCHS)}")
    cfg = DEFAULT_CONFIGS[arch] if config is None else config
    return ARCHS[arch](**cfg)


def metadata(arch: str, config: dict, float_accuracy: float | None = None) -> dict[str, str]:
    """The ``__metadata__`` of a weight file (docs/internals.md, "Weight-file format")."""
    meta = {
        "format": "pt",
        "wkbnoise.arch": arch,
        "wkbnoise.config": json.dumps(config),
        "wkbnoise.input": json.dumps(INPUT_SPEC),
        "wkbnoise.task": "classifier",
    }
    if float_accuracy is not None:
        meta["wkbnoise.float_accuracy"] = json.dumps(float(float_accuracy))
    return meta


def export(model: nn.Module, path: str | Path, arch: str, config: dict, float_accuracy: float | None) -> Path:
    """Write ``model.state_dict()`` as safetensors with the contract's metadata.

    Tensors keep their PyTorch names and dtypes (float32 weights; BatchNorm ``running_mean``,
    ``running_var`` and int64 ``num_batches_tracked`` as PyTorch saves them; the runtime folds BN
    at load).

    Parameters
    ----------
    model : nn.Module
        A zoo network (any mode; the state dict does not depend on it).
    path : str or Path
        Output ``.safetensors`` file.
    arch : str
        Architecture name, e.g. ``"lenet5"``.
    config : dict
        The config the model was built from (stored as JSON).
    float_accuracy : float or None
        Clean float accuracy on the bundled 1,000 test images, in [0, 1].

    Returns
    -------
    Path
        The written file.
    """
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    path = Path(path)
    save_file(state, str(path), metadata=metadata(arch, config, float_accuracy))
    return path
