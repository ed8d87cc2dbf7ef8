"""A PyTorch module -> a wkbnoise graph, through the ONNX importer.

The module is traced by PyTorch's TorchScript ONNX exporter (``torch.onnx.export(..., dynamo=False)``,
which needs no package beyond torch) into memory, with BatchNorm kept as nodes (so the weights keep the
module's parameter names and are folded by :mod:`wkbnoise.importers.onnx`) and the batch dimension left
free; the ONNX importer then translates that graph. ``torch`` is imported here only, when called.
"""

from __future__ import annotations

import io
import warnings

from ..errors import InputError, ModelFileError

__all__ = ["from_torch", "OPSET"]

#: ONNX opset of the export (LayerNormalization and HardSwish are single ops from 17 on)
OPSET = 17


def _torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise InputError("from_torch needs PyTorch: pip install torch") from exc
    return torch


def from_torch(module, example_input, *, input_name: str = "images", output_name: str = "logits"):
    """Translate a PyTorch module into ``(Graph, params)``.

    Parameters
    ----------
    module : torch.nn.Module
        The network; it is put in eval mode (BatchNorm running statistics, no dropout) and not modified
        otherwise.
    example_input : torch.Tensor
        One input batch (any batch size; the graph accepts any) in the module's own layout, e.g. NCHW
        float32 images.
    input_name, output_name : str
        Names of the graph's input and output values.

    Returns
    -------
    graph : wkbnoise.runtime.graph.Graph
    params : dict of str to ndarray of float32
        Keyed by the module's parameter names (``layer1.0.conv1.weight``, ...).
    """
    torch = _torch()
    from .onnx import _onnx, from_model_proto

    onnx = _onnx()
    if not isinstance(module, torch.nn.Module):
        raise InputError(f"module={type(module).__name__}: expected a torch.nn.Module")
    if not isinstance(example_input, torch.Tensor):
        raise InputError(f"example_input={type(example_input).__name__}: expected a torch.Tensor (one batch)")
    was_training = module.training
    module.eval()
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter announces its own deprecation
            torch.onnx.export(
                module,
                (example_input,),
                buf,
                dynamo=False,
                opset_version=OPSET,
                training=torch.onnx.TrainingMode.PRESERVE,
                do_constant_folding=True,
                input_names=[input_name],
                output_names=[output_name],
                dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
            )
    except Exception as exc:  # noqa: BLE001 - the exporter's own message says which op failed
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"{type(module).__name__}: torch.onnx.export failed: {first}") from None
    finally:
        module.train(was_training)
    return from_model_proto(onnx.load_from_string(buf.getvalue()), source=f"<{type(module).__name__}>")
