"""Networks from other frameworks -> a wkbnoise weight file (safetensors weights + the graph beside them).

>>> from wkbnoise.convert import from_torch, save      # doctest: +SKIP
>>> graph, params = from_torch(net, torch.randn(1, 3, 224, 224))  # doctest: +SKIP
>>> save(graph, params, "net.safetensors")              # doctest: +SKIP

The written file loads with :func:`wkbnoise.load_model` and runs without PyTorch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import InputError
from .importers.torch import from_torch

__all__ = ["from_torch", "save"]


def save(graph, params, out) -> Path:
    """Write ``params`` as a safetensors file whose ``__metadata__`` holds the graph (``"wkbnoise.graph"``).

    Parameters
    ----------
    graph : wkbnoise.runtime.graph.Graph
    params : dict of str to ndarray
        The graph's weights (stored float32, under their names).
    out : str or Path
        The ``.safetensors`` file to write (its folder is created).

    Returns
    -------
    Path
        ``out``.
    """
    from safetensors.numpy import save_file

    out = Path(out)
    if out.suffix != ".safetensors":
        raise InputError(f"out={str(out)!r} must end in .safetensors")
    graph.validate(params)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in params.items()},
        str(out),
        metadata={"format": "pt", "wkbnoise.graph": graph.to_json()},
    )
    return out
