"""Checks of an architecture's config and input spec, run before a model is built.

A config that cannot describe a network (a ViT whose heads do not divide its width, zero heads, a
negative layer count) or an input normalization that divides by zero is refused with one
:class:`~wkbnoise.errors.ModelFileError` that names the file, the key and the fix, instead of failing
deep inside the forward pass or producing NaN outputs.
"""

from __future__ import annotations

import json
import math

from ..errors import ModelFileError

__all__ = ["check_config", "check_input_spec"]

#: keys that must be integers >= 1, per architecture (defaults filled in before the check)
_POSITIVE = {
    "lenet5": ("classes",),
    "vgg": ("hidden", "classes"),
    "resnet20": ("blocks", "classes"),
    "mobilenetv2": ("stem", "head", "classes"),
    "vit": ("patch", "dim", "depth", "heads", "mlp", "classes"),
    "bert": ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
             "max_position_embeddings"),
}


def _positive_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def check_config(arch: str, cfg: dict, where: str) -> None:
    """Refuse a config whose sizes cannot build ``arch``.

    Parameters
    ----------
    arch : str
        Architecture name.
    cfg : dict
        The config with the architecture's defaults filled in.
    where : str
        What to name in the message (``path='model.safetensors'``).

    Raises
    ------
    ModelFileError
        On a size that is not an integer >= 1, or attention heads that do not divide the width.
    """
    fix = "Use the config the weights were trained with."
    for key in _POSITIVE.get(arch, ()):
        if key in cfg and not _positive_int(cfg[key]):
            raise ModelFileError(f"{where}: config {key}={cfg[key]!r} must be an integer >= 1 for a {arch}. {fix}")
    width, heads = {"vit": ("dim", "heads"), "bert": ("hidden_size", "num_attention_heads")}.get(arch, (None, None))
    if width and width in cfg and heads in cfg and cfg[width] % cfg[heads]:
        raise ModelFileError(f"{where}: config {width}={cfg[width]} is not a multiple of {heads}={cfg[heads]}, so "
                             f"the attention heads cannot split the width. {fix}")
    for key in ("eps", "layer_norm_eps", "bn_eps"):
        if key in cfg:
            v = cfg[key]
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
                raise ModelFileError(f"{where}: config {key}={v!r} must be a finite number > 0. {fix}")
    if arch == "vgg" and "stages" in cfg:
        st = cfg["stages"]
        if not isinstance(st, list) or not st or not all(isinstance(s, list) and s and all(map(_positive_int, s))
                                                        for s in st):
            raise ModelFileError(f"{where}: config stages={st!r} must be a non-empty list of lists of channel "
                                 f"counts >= 1. {fix}")
    if arch == "resnet20" and "widths" in cfg:
        w = cfg["widths"]
        if not isinstance(w, list) or not w or not all(map(_positive_int, w)):
            raise ModelFileError(f"{where}: config widths={w!r} must be a non-empty list of integers >= 1. {fix}")


def check_input_spec(metadata: dict, where: str) -> None:
    """Refuse a ``wkbnoise.input`` spec that cannot normalize an image (non-finite mean, std <= 0, bad shape).

    Raises
    ------
    ModelFileError
        On a spec that is not a JSON object, a shape that is not three integers >= 1, or a mean/std that
        would give non-finite inputs.
    """
    if "wkbnoise.input" not in metadata:
        return
    try:
        spec = json.loads(metadata["wkbnoise.input"])
    except json.JSONDecodeError:
        return  # the model's own reader says how to write it
    fix = 'Write it as \'{"shape": [1, 28, 28], "mean": 0.1307, "std": 0.3081}\'.'
    if not isinstance(spec, dict):
        raise ModelFileError(f"{where}: metadata wkbnoise.input={spec!r} must be a JSON object. {fix}")
    if "shape" in spec and (not isinstance(spec["shape"], list) or len(spec["shape"]) != 3
                            or not all(map(_positive_int, spec["shape"]))):
        raise ModelFileError(f"{where}: metadata wkbnoise.input shape={spec['shape']!r} must be [C, H, W], "
                             f"integers >= 1. {fix}")
    for key, low_open in (("mean", False), ("std", True)):
        if key in spec:
            v = spec[key]
            ok = not isinstance(v, bool) and isinstance(v, int | float) and math.isfinite(v) and (v > 0 or not low_open)
            if not ok:
                need = "a finite number > 0 (inputs are divided by it)" if low_open else "a finite number"
                raise ModelFileError(f"{where}: metadata wkbnoise.input {key}={v!r} must be {need}. {fix}")
