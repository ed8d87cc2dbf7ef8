"""The bundled MNIST model zoo: five trained networks, the 1,000 test images and 256 calibration images.

Weights are safetensors files beside this module (trained by ``python -m wkbnoise.zoo.train``, which needs
the ``train`` extra); reading them needs only NumPy and safetensors.

Examples
--------
>>> from wkbnoise import zoo
>>> zoo.names()
['lenet5', 'vgg', 'resnet20', 'mobilenetv2', 'vit']
>>> images, labels = zoo.test_set()
>>> images.shape, images.dtype, labels.shape
((1000, 1, 28, 28), dtype('uint8'), (1000,))
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import InputError, ModelFileError

__all__ = ["names", "path", "load", "test_set", "calibration_images", "ZOO_DIR"]

ZOO_DIR = Path(__file__).resolve().parent
_NAMES = ("lenet5", "vgg", "resnet20", "mobilenetv2", "vit")


def names() -> list[str]:
    """The zoo's model names, smallest first (the order of every table)."""
    return list(_NAMES)


def path(name: str) -> Path:
    """Path of the bundled weight file of model ``name``.

    Raises
    ------
    InputError
        If ``name`` is not a zoo model.
    ModelFileError
        If the weight file is not there (the zoo has not been trained/committed in this checkout).
    """
    if name not in _NAMES:
        raise InputError(f"model name={name!r} is not in the zoo; use one of {', '.join(_NAMES)}.")
    p = ZOO_DIR / f"{name}.safetensors"
    if not p.is_file():
        raise ModelFileError(f"zoo weight file {str(p)!r} is missing. Train it with "
                             f"`python -m wkbnoise.zoo.train --models {name}` (train extra), or reinstall.")
    return p


def load(name: str):
    """Load zoo model ``name`` (see :func:`wkbnoise.runtime.load_model`)."""
    from ..runtime import load_model

    return load_model(path(name))


def _read(file: str, keys: tuple[str, ...]):
    from ..runtime.loader import read_header

    p = ZOO_DIR / file
    if not p.is_file():
        raise ModelFileError(f"zoo data file {str(p)!r} is missing. Recreate it with "
                             f"`python -m wkbnoise.zoo.train` (train extra), or reinstall.")
    header, _, _ = read_header(p)
    from safetensors.numpy import load_file

    data = load_file(str(p))
    missing = [k for k in keys if k not in data]
    if missing:
        raise ModelFileError(f"zoo data file {str(p)!r} lacks tensor(s) {', '.join(missing)}.")
    out = []
    for k in keys:
        a = np.ascontiguousarray(data[k])
        a.setflags(write=False)
        out.append(a)
    return out


@lru_cache(maxsize=1)
def _test_set():
    return tuple(_read("mnist_test.safetensors", ("images", "labels")))


def test_set() -> tuple[np.ndarray, np.ndarray]:
    """The 1,000 bundled MNIST test images and labels.

    Returns
    -------
    images : ndarray of uint8, shape (1000, 1, 28, 28)
        Pixels 0..255 (read-only).
    labels : ndarray of int64, shape (1000,)
        Digits 0..9 (read-only).
    """
    return _test_set()


@lru_cache(maxsize=1)
def _calibration():
    return _read("mnist_calibration.safetensors", ("images",))[0]


def calibration_images() -> np.ndarray:
    """256 unlabeled calibration images from the training split, uint8 (256, 1, 28, 28), read-only."""
    return _calibration()
