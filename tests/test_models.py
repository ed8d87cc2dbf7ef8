"""The five zoo architectures, randomly initialised in PyTorch (non-trivial BN statistics), exported to
safetensors, loaded by the runtime: logits agree; weight swapping neither copies nor mutates."""

from __future__ import annotations

import numpy as np
import pytest
from reference import rel_err

from wkbnoise import InputError
from wkbnoise.runtime import PreparedInput, load_model

ARCHS = ["lenet5", "vgg", "resnet20", "mobilenetv2", "vit"]
RTOL = 1e-4



@pytest.fixture(scope="module")
def tm():
    pytest.importorskip("torch")
    return pytest.importorskip("wkbnoise.zoo.train_models")


def random_torch_model(tm, arch, seed=0):
    """A zoo network with random weights and random BN affine/running statistics, in eval mode."""
    import torch

    torch.manual_seed(seed)
    m = tm.build(arch)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                c = mod.num_features
                mod.running_mean.copy_(0.3 * torch.randn(c, generator=g))
                mod.running_var.copy_(0.5 + torch.rand(c, generator=g))
                mod.weight.copy_(0.5 + torch.rand(c, generator=g))
                mod.bias.copy_(0.2 * torch.randn(c, generator=g))
                mod.num_batches_tracked.fill_(100)
        if arch == "vit":  # trunc_normal(0.02) init makes near-constant logits; spread them
            for p in m.parameters():
                p.mul_(8.0) if p.ndim >= 2 else p.add_(0.1 * torch.randn(p.shape, generator=g))
    return m.eval()


@pytest.fixture(scope="module")
def pair(tm, tmp_path_factory):
    """arch -> (torch model, runtime model), built once per module."""
    d = tmp_path_factory.mktemp("models")
    out = {}
    for arch in ARCHS:
        m = random_torch_model(tm, arch)
        path = tm.export(m, d / f"{arch}.safetensors", arch, tm.DEFAULT_CONFIGS[arch], None)
        out[arch] = (m, load_model(path))
    return out


@pytest.fixture(scope="module")
def x():
    rng = np.random.default_rng(0)
    return rng.standard_normal((48, 1, 28, 28)).astype(np.float32)


def torch_logits(m, x):
    import torch

    with torch.no_grad():
        return m(torch.from_numpy(x)).numpy()


@pytest.mark.torch
@pytest.mark.parametrize("arch", ARCHS)
def test_logits_match_torch(pair, x, arch):
    m, rm = pair[arch]
    ref = torch_logits(m, x)
    got = rm(x)
    assert got.shape == ref.shape == (48, 10) and got.dtype == np.float32
    assert rel_err(got, ref) < RTOL
    assert np.std(ref) > 0.05 * np.max(np.abs(ref))  # logits vary: the comparison is not trivially passed


@pytest.mark.torch
@pytest.mark.parametrize("arch", ARCHS)
def test_replacement_weights_match_torch_and_leave_model_untouched(pair, x, arch):
    """Swap the last linear layer (no BN there, so the torch model can take the same array)."""
    import torch

    m, rm = pair[arch]
    name = rm.layers[-1].name
    before = {k: v.copy() for k, v in rm.params.items()}
    w_new = np.random.default_rng(5).standard_normal(rm.layers[-1].weight.shape).astype(np.float32)
    w_new.setflags(write=False)  # the runtime must not write into it
    got = rm(x, weights={name: w_new})
    m2 = random_torch_model(pytest.importorskip("wkbnoise.zoo.train_models"), arch)
    with torch.no_grad():
        dict(m2.named_parameters())[name].copy_(torch.from_numpy(w_new.copy()))
    assert rel_err(got, torch_logits(m2, x)) < RTOL
    assert rel_err(got, rm(x)) > 1e-2  # the swap changed the logits...
    for k, v in rm.params.items():  # ...but not the model
        np.testing.assert_array_equal(v, before[k])


@pytest.mark.torch
@pytest.mark.parametrize("arch", ARCHS)
def test_prepared_input_and_batching_are_exact(pair, x, arch):
    _, rm = pair[arch]
    noisy = {ly.name: (ly.weight * np.float32(1.01)) for ly in rm.layers[:2]}
    direct = rm.forward(x, noisy, batch_size=20)
    prep = rm.prepare(x, batch_size=20)
    assert isinstance(prep, PreparedInput) and len(prep) == len(x)
    np.testing.assert_array_equal(rm(prep, noisy), direct)
    np.testing.assert_array_equal(rm(prep, noisy), direct)  # second call reads the cache
    np.testing.assert_array_equal(rm(prep), rm.forward(x, batch_size=20))
    assert rel_err(rm.forward(x, batch_size=7), rm.forward(x, batch_size=48)) < 1e-6


@pytest.mark.torch
def test_bn_is_folded_into_the_conv(pair):
    import torch

    m, rm = pair["vgg"]
    conv, bn = m.features[0], m.features[1]
    s = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().numpy()
    np.testing.assert_allclose(rm.layers[0].weight, conv.weight.detach().numpy() * s[:, None, None, None],
                               rtol=1e-6)
    assert "features.1.running_mean" not in rm.params and "features.0.bias" in rm.params
    assert [ly.kind for ly in pair["mobilenetv2"][1].layers][:3] == ["conv", "depthwise", "conv"]


@pytest.mark.torch
def test_layer_lists(pair):
    rm = pair["resnet20"][1]
    names = [ly.name for ly in rm.layers]
    assert names[0] == "conv1.weight" and names[-1] == "fc.weight" and "layer2.0.shortcut.0.weight" in names
    assert len(names) == 1 + 9 * 2 + 2 + 1
    vit = pair["vit"][1]
    assert [ly.name for ly in vit.layers][:3] == ["patch_embed.weight", "blocks.0.attn.qkv.weight",
                                                  "blocks.0.attn.proj.weight"]
    assert "cls_token" in vit.params and all(ly.name != "cls_token" for ly in vit.layers)


@pytest.mark.torch
def test_bad_calls_are_input_errors(pair, x):
    rm = pair["lenet5"][1]
    w = rm.layers[0].weight
    with pytest.raises(InputError, match="not a quantizable layer"):
        rm(x, weights={"conv9.weight": w})
    with pytest.raises(InputError, match="shape"):
        rm(x, weights={"conv1.weight": w[:3]})
    with pytest.raises(InputError, match="float32"):
        rm(x, weights={"conv1.weight": w.astype(np.float64)})
    with pytest.raises(InputError, match="preprocess"):
        rm((x * 50).astype(np.uint8))
    with pytest.raises(InputError, match="another model"):
        rm(pair["vgg"][1].prepare(x))
    np.testing.assert_allclose(rm.preprocess(np.full((1, 28, 28), 255, np.uint8)),
                               (1.0 - 0.1307) / 0.3081, rtol=1e-6)
