"""``wkbnoise.convert.from_torch``: PyTorch modules -> graph, against the modules' own outputs (within 1e-4
relative), saved with ``convert.save`` and loaded back without PyTorch's help; failures are one line."""

from __future__ import annotations

import numpy as np
import pytest
from reference import rel_err

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

import torch_nets as tn  # noqa: E402

from wkbnoise import convert  # noqa: E402
from wkbnoise.errors import InputError, ModelFileError  # noqa: E402
from wkbnoise.runtime.graph import run  # noqa: E402

pytestmark = pytest.mark.torch
# until load_model reads .onnx / .h5 / graph files (the graph room's models.py), the CLI checks cannot run
from wkbnoise.runtime import models as _models  # noqa: E402

needs_loader = pytest.mark.skipif(not hasattr(_models, "model_from_graph"),
                                  reason="load_model does not dispatch to the importers yet")

TOL = 1e-4


def torch_logits(module, x):
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("name", ["resnet", "mobilenet", "transformer"])
def test_from_torch_matches_module(name):
    torch.manual_seed(0)
    net, shape = {
        "resnet": (tn.ResNet(width=8, classes=10), (3, 40, 40)),
        "mobilenet": (tn.MobileNet(classes=7), (3, 24, 24)),
        "transformer": (tn.EncoderBlock(), (3, 16, 16)),
    }[name]
    tn.randomize_bn(net).train()  # from_torch evaluates in eval mode and gives the mode back
    graph, params = convert.from_torch(net, torch.randn(1, *shape))
    assert net.training
    assert graph.inputs[0]["name"] == "images" and graph.inputs[0]["shape"] == [None, *shape]
    assert graph.outputs == ("logits",)
    x = np.random.default_rng(0).standard_normal((4, *shape)).astype(np.float32)
    err = rel_err(run(graph, params, {"images": x})["logits"], torch_logits(net.eval(), x))
    assert err <= TOL, (name, err)
    named = dict(net.named_parameters())
    convs = [n for n, m in net.named_modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(f"{c}.weight" in graph.quantized for c in convs)  # BN folded under the module's names
    assert all(k in named or k.startswith("onnx::") for k in graph.quantized)


@needs_loader
def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(1)
    net = tn.randomize_bn(tn.ResNet(width=8, classes=10, blocks=(1, 1, 1, 1)))
    graph, params = convert.from_torch(net, torch.randn(2, 3, 32, 32))
    path = convert.save(graph, params, tmp_path / "resnet.safetensors")
    from wkbnoise.runtime import load_model

    model = load_model(path)
    x = np.random.default_rng(1).standard_normal((3, 3, 32, 32)).astype(np.float32)
    assert rel_err(model(x), torch_logits(net, x)) <= TOL
    with pytest.raises(InputError, match="safetensors"):
        convert.save(graph, params, tmp_path / "resnet.pt")


def test_bad_arguments_and_unsupported_ops():
    with pytest.raises(InputError, match="torch.nn.Module"):
        convert.from_torch(lambda x: x, torch.randn(1, 3))
    with pytest.raises(InputError, match="torch.Tensor"):
        convert.from_torch(torch.nn.Linear(3, 2), np.zeros((1, 3), np.float32))

    class Cumulative(torch.nn.Module):
        def forward(self, x):
            return torch.cumsum(x, 1)

    with pytest.raises(ModelFileError, match="op 'CumSum'.*<Cumulative>: op CumSum is not supported"):
        convert.from_torch(Cumulative(), torch.randn(2, 5))
