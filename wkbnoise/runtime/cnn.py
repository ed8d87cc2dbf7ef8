"""The four CNNs of the zoo (docs/internals.md), built from their config, run in the (C, N, H, W) layout.

Tensor names are the PyTorch module names of ``wkbnoise/zoo/train.py``. BatchNorm is folded into the
preceding conv at load (:func:`wkbnoise.runtime.base.fold_batchnorm`), so the forward pass is conv (+bias)
and activation only; activations are applied in place on arrays that the pass owns.
"""

from __future__ import annotations

import numpy as np

from .base import Model, Unit
from .layers import adaptive_avg_pool_cnhw, conv2d_cnhw, im2col_cnhw, max_pool_cnhw

__all__ = ["LeNet5", "VGG", "ResNet20", "MobileNetV2"]

_F32 = np.float32


def _to_cnhw(x):
    """(N, C, H, W) -> (C, N, H, W); free for one channel."""
    return np.ascontiguousarray(x.transpose(1, 0, 2, 3))


def _conv(h, p, name, scratch, *, stride=1, padding=0, groups=1, fixed=False):
    """Conv ``name`` (+ its bias if any) on a CNHW array.

    ``scratch`` is the batch's :class:`~wkbnoise.runtime.base.Scratch`; ``fixed=True`` says ``h`` is the model
    input itself, whose im2col a prepared input keeps across calls.
    """
    w = p[name + ".weight"]
    b = p.get(name + ".bias")
    cache = scratch.fixed if fixed else None
    if cache is None:
        return conv2d_cnhw(h, w, b, stride=stride, padding=padding, groups=groups, buffers=scratch.buffers)
    cols = cache.get(name)
    if cols is None:
        cols = im2col_cnhw(h, w.shape[2:], (stride, stride), (padding, padding))
        cache[name] = cols
    return conv2d_cnhw(h, w, b, stride=stride, padding=padding, cols=cols)


def _relu(h):
    return np.maximum(h, _F32(0), out=h)


def _relu6(h):
    return np.clip(h, _F32(0), _F32(6), out=h)


def _linear(h, p, name):
    out = np.dot(h, p[name + ".weight"].T)
    out += p[name + ".bias"]
    return out


def _flatten_cnhw(h):
    """(C, N, H, W) -> (N, C*H*W) in PyTorch's flatten order."""
    return h.transpose(1, 0, 2, 3).reshape(h.shape[1], -1)


class LeNet5(Model):
    """LeNet-5: conv1 (6@5x5, pad 2) ReLU pool2, conv2 (16@5x5) ReLU pool2, fc1 400-120, fc2 120-84, fc3."""

    arch = "lenet5"
    defaults = {"classes": 10}
    default_batch_size = 250

    @property
    def units(self):
        k = self.config["classes"]
        return [Unit("conv1.weight", (6, 1, 5, 5), True), Unit("conv2.weight", (16, 6, 5, 5), True),
                Unit("fc1.weight", (120, 400), True, kind="linear"),
                Unit("fc2.weight", (84, 120), True, kind="linear"),
                Unit("fc3.weight", (k, 84), True, kind="linear")]

    def _run(self, x, p, s):
        h = _relu(_conv(_to_cnhw(x), p, "conv1", s, padding=2, fixed=True))
        h = max_pool_cnhw(h, 2, 2)
        h = max_pool_cnhw(_relu(_conv(h, p, "conv2", s)), 2, 2)
        h = _relu(_linear(_flatten_cnhw(h), p, "fc1"))
        h = _relu(_linear(h, p, "fc2"))
        return _linear(h, p, "fc3")


class VGG(Model):
    """Small VGG: per stage (conv3x3 no bias, BN, ReLU) per entry then max-pool 2; classifier.0, ReLU, classifier.3."""

    arch = "vgg"
    defaults = {"stages": [[32, 32], [64, 64], [128]], "hidden": 128, "classes": 10}

    def _plan(self):
        plan, idx, c_in = [], 0, self.input_spec["shape"][0]
        for stage in self.config["stages"]:
            for c in stage:
                plan.append(("conv", idx, c_in, c))
                c_in, idx = c, idx + 3
            plan.append(("pool", idx, c_in, c_in))
            idx += 1
        return plan, c_in

    @property
    def units(self):
        plan, c_last = self._plan()
        side = self.input_spec["shape"][1]
        for _ in self.config["stages"]:
            side //= 2
        hidden, k = self.config["hidden"], self.config["classes"]
        units = [Unit(f"features.{i}.weight", (co, ci, 3, 3), bn=f"features.{i + 1}")
                 for op, i, ci, co in plan if op == "conv"]
        return units + [Unit("classifier.0.weight", (hidden, c_last * side * side), True, kind="linear"),
                        Unit("classifier.3.weight", (k, hidden), True, kind="linear")]

    def _run(self, x, p, s):
        h = _to_cnhw(x)
        first = True
        for op, i, _, _ in self._plan()[0]:
            if op == "conv":
                h = _relu(_conv(h, p, f"features.{i}", s, padding=1, fixed=first))
                first = False
            else:
                h = max_pool_cnhw(h, 2, 2)
        h = _relu(_linear(_flatten_cnhw(h), p, "classifier.0"))
        return _linear(h, p, "classifier.3")


class ResNet20(Model):
    """CIFAR-style ResNet-20 on 1x28x28: conv1/bn1, three layers of BasicBlocks, global average pool, fc."""

    arch = "resnet20"
    defaults = {"widths": [16, 32, 64], "blocks": 3, "classes": 10}

    def _blocks(self):
        out, c_in = [], self.config["widths"][0]
        for li, w in enumerate(self.config["widths"]):
            for bi in range(self.config["blocks"]):
                stride = 2 if (li > 0 and bi == 0) else 1
                out.append((f"layer{li + 1}.{bi}.", c_in, w, stride, stride != 1 or c_in != w))
                c_in = w
        return out

    @property
    def units(self):
        w0 = self.config["widths"][0]
        units = [Unit("conv1.weight", (w0, self.input_spec["shape"][0], 3, 3), bn="bn1")]
        for pre, ci, co, _, short in self._blocks():
            units.append(Unit(pre + "conv1.weight", (co, ci, 3, 3), bn=pre + "bn1"))
            units.append(Unit(pre + "conv2.weight", (co, co, 3, 3), bn=pre + "bn2"))
            if short:
                units.append(Unit(pre + "shortcut.0.weight", (co, ci, 1, 1), bn=pre + "shortcut.1"))
        return units + [Unit("fc.weight", (self.config["classes"], self.config["widths"][-1]), True,
                             kind="linear")]

    def _run(self, x, p, s):
        h = _relu(_conv(_to_cnhw(x), p, "conv1", s, padding=1, fixed=True))
        for pre, _, _, stride, short in self._blocks():
            out = _relu(_conv(h, p, pre + "conv1", s, stride=stride, padding=1))
            out = _conv(out, p, pre + "conv2", s, padding=1)
            out += _conv(h, p, pre + "shortcut.0", s, stride=stride) if short else h
            h = _relu(out)
        h = adaptive_avg_pool_cnhw(h, 1)[:, :, 0, 0].T
        return _linear(h, p, "fc")


class MobileNetV2(Model):
    """Reduced MobileNetV2: stem, inverted residual blocks (expand 1x1, depthwise 3x3, project 1x1), head, fc."""

    arch = "mobilenetv2"
    defaults = {"stem": 16, "blocks": [[1, 16, 1, 1], [4, 24, 2, 2], [4, 32, 2, 2], [4, 64, 2, 1]],
                "head": 128, "classes": 10}

    def _blocks(self):
        out, c_in, i = [], self.config["stem"], 0
        for t, c, n, s in self.config["blocks"]:
            for r in range(n):
                stride = s if r == 0 else 1
                out.append((f"blocks.{i}.", c_in, c_in * t, c, stride, t != 1, stride == 1 and c_in == c))
                c_in, i = c, i + 1
        return out, c_in

    @property
    def units(self):
        stem = self.config["stem"]
        units = [Unit("stem.0.weight", (stem, self.input_spec["shape"][0], 3, 3), bn="stem.1")]
        blocks, c_last = self._blocks()
        for pre, ci, hid, co, _, expand, _ in blocks:
            if expand:
                units.append(Unit(pre + "expand.0.weight", (hid, ci, 1, 1), bn=pre + "expand.1"))
            units.append(Unit(pre + "dw.0.weight", (hid, 1, 3, 3), bn=pre + "dw.1", kind="depthwise"))
            units.append(Unit(pre + "project.0.weight", (co, hid, 1, 1), bn=pre + "project.1"))
        head = self.config["head"]
        return units + [Unit("head.0.weight", (head, c_last, 1, 1), bn="head.1"),
                        Unit("classifier.weight", (self.config["classes"], head), True, kind="linear")]

    def _run(self, x, p, s):
        h = _relu6(_conv(_to_cnhw(x), p, "stem.0", s, padding=1, fixed=True))
        for pre, _, hid, _, stride, expand, residual in self._blocks()[0]:
            out = _relu6(_conv(h, p, pre + "expand.0", s)) if expand else h
            out = _relu6(_conv(out, p, pre + "dw.0", s, stride=stride, padding=1, groups=hid))
            out = _conv(out, p, pre + "project.0", s)
            if residual:
                out += h
            h = out
        h = _relu6(_conv(h, p, "head.0", s))
        h = adaptive_avg_pool_cnhw(h, 1)[:, :, 0, 0].T
        return _linear(h, p, "classifier")
