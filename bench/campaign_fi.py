"""The same Monte Carlo weight-fault campaign, written with PyTorchFI 0.6 and MRFI 2.1 as their docs show.

Both tools get the same folded model, the same 1,000 images, the same p and trial count as the
other campaigns of ``bench/run.py`` part 3 (see :mod:`campaign_torch`).

PyTorchFI (``pytorchfi.core.fault_injection``)
    Its weight API is ``declare_weight_fi(layer_num=[..], k=[..], dim1=[..], dim2=[..], dim3=[..],
    value=[..])``: a list of single-weight declarations; the built-in weight error models
    (``random_weight_inj``, ``zero_func_rand_weight``) corrupt one random weight with a random or
    zero value, and its bit-flip model (``single_bit_flip_func``) acts on neurons (activations), not
    weights. So a per-bit campaign is written the documented way: the user quantizes once, draws
    the per-bit Bernoulli masks, and declares one injection (the flipped, dequantized value) per
    weight whose code changed. **Exact**: yes, the fault model is the user's; PyTorchFI only writes
    the values, one Python-level declaration per faulty weight, after a ``deepcopy`` of the model.

MRFI (``mrfi.MRFI`` + ``EasyConfig``, the ``weight_fi`` preset)
    Weight faults are a YAML config: ``quantization: SymmericQuantization`` (bit_width 8,
    ``dynamic_range: auto``), ``selector: RandomPositionByRate`` (``rate`` per *value*; its docs:
    "to calculate the bit error rate on bit flip experiment, it needs to be additionally divided by
    the bit width", so rate = p * 8) and ``error_mode: IntRandomBitFlip`` (one random bit per chosen
    value). **Approximate**: it draws n ~ Poisson(rate * N) positions with replacement and flips one
    uniformly random bit in each, so it never flips two bits of one code (exact per-bit flips at
    p = 0.1 flip 2+ bits in 19 % of codes), a position drawn twice is flipped once, no asymmetric
    (1->0 vs 0->1) or per-plane rates, no protected planes; rate must be < 1 and not exactly 0.1
    (``_check_rate_zero`` raises), and above 0.1 it warns "may get inaccuracy result". MRFI
    re-quantizes the float weights at every forward pass (layer-wise quantization in a hook), and its
    scale maps [-max|w|, max|w|] to [-127, 127] like the others.

Run alone: ``python bench/campaign_fi.py lenet5 --impl mrfi --p 0.01 --trials 5``.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from campaign_torch import Campaign, bernoulli_mask, cli_main, quant_modules, quantize_int8  # noqa: E402

EXPRESSES = {
    "pytorchfi": "exact per-bit flips, but only as user-computed values: one declare_weight_fi entry per faulty weight",
    "mrfi": "approx.: Poisson(8p*N) values, one random bit each (never 2+ bits per code); symmetric p only",
}


def tool_versions() -> dict[str, str]:
    """Installed versions of the two fault injectors (``"absent"`` when not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("pytorchfi", "mrfi"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "absent"
    return out


@contextlib.contextmanager
def _quiet_logging():
    """Silence the tools' INFO/WARNING logging while a campaign runs (MRFI warns per layer per
    forward at rate > 0.1, and PyTorchFI installs a root format with fields its records lack)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


# --------------------------------------------------------------------------------------------- PyTorchFI
class PyTorchFICampaign(Campaign):
    """Exact per-bit weight campaign through ``pytorchfi.core.fault_injection.declare_weight_fi``."""

    tool = "pytorchfi"

    def run(self, p: float, trials: int, seed: int = 0) -> np.ndarray:
        """Accuracies of ``trials`` trials (setup, quantize once and ``fault_injection`` init included)."""
        from pytorchfi.core import fault_injection

        with _quiet_logging():
            # quantize once: the model PyTorchFI copies holds the clean dequantized weights
            model = copy.deepcopy(self.model)
            layers = []
            for _, m in quant_modules(model):
                codes, scale = quantize_int8(m.weight.data, self.bits)
                m.weight.data.copy_(codes.float() * scale)
                layers.append((tuple(m.weight.shape), codes.reshape(-1), scale))
            pfi = fault_injection(
                model, batch_size=len(self.y), input_shape=list(self.x.shape[1:]),
                layer_types=[nn.Conv2d, nn.Linear], use_cuda=False,
            )
            gen = torch.Generator().manual_seed(seed)
            acc = np.empty(trials)
            for t in range(trials):
                layer_num, ks, d1, d2, d3, values = [], [], [], [], [], []
                for li, (shape, codes, scale) in enumerate(layers):
                    mask = bernoulli_mask(codes.numel(), self.bits, p, gen)
                    idx = torch.nonzero(mask).flatten()
                    faulty = (codes[idx] ^ mask[idx].view(torch.int8)).float() * scale
                    pos = np.unravel_index(idx.numpy(), shape)
                    n = len(idx)
                    layer_num += [li] * n
                    ks += pos[0].tolist()
                    d1 += pos[1].tolist()
                    d2 += pos[2].tolist() if len(shape) > 2 else [None] * n
                    d3 += pos[3].tolist() if len(shape) > 3 else [None] * n
                    values += faulty.tolist()
                corrupt = pfi.declare_weight_fi(
                    layer_num=layer_num, k=ks, dim1=d1, dim2=d2, dim3=d3, value=values
                )
                corrupt.eval()
                with torch.no_grad():
                    logits = corrupt(self.x)
                acc[t] = self.accuracy(logits)
        return acc


# --------------------------------------------------------------------------------------------- MRFI
_MRFI_CONFIG = """
faultinject:
  - type: weight
    name: [weight]
    quantization:
      method: SymmericQuantization
      dynamic_range: auto
      bit_width: {bits}
    enabled: True
    selector:
      method: RandomPositionByRate
      poisson: True
      rate: {rate!r}
    error_mode:
      method: IntRandomBitFlip
      bit_width: {bits}
    module_type: [Conv2d, Linear]
"""


class MRFICampaign(Campaign):
    """MRFI's ``weight_fi`` preset at 8 bits, value rate = bits * p (its documented conversion)."""

    tool = "mrfi"

    def run(self, p: float, trials: int, seed: int = 0) -> np.ndarray:
        """Accuracies of ``trials`` trials (setup: copy, config and hooks included)."""
        from mrfi import MRFI, EasyConfig

        with _quiet_logging():
            rate = float(p) * self.bits
            cfg = EasyConfig.load_string(_MRFI_CONFIG.format(bits=self.bits, rate=rate))
            fi_model = MRFI(copy.deepcopy(self.model), cfg)
            torch.manual_seed(seed)  # MRFI draws from torch's and NumPy's global generators
            np.random.seed(seed)
            acc = np.empty(trials)
            for t in range(trials):
                logits = fi_model(self.x)  # MRFI.__call__ runs under torch.no_grad()
                acc[t] = self.accuracy(logits)
        return acc


CAMPAIGNS = {"pytorchfi": PyTorchFICampaign, "mrfi": MRFICampaign}


if __name__ == "__main__":
    cli_main(CAMPAIGNS, __doc__, "mrfi")
