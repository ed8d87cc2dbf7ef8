"""The safetensors loader: dtypes, skipped buffers, BN folding, and one clear line for every bad file."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from conftest import assert_one_line_error
from safetensors.numpy import save_file

from wkbnoise import ModelFileError
from wkbnoise.runtime import fold_batchnorm, load_model, read_safetensors

META = {"format": "pt", "wkbnoise.arch": "lenet5", "wkbnoise.config": "{}",
        "wkbnoise.input": json.dumps({"shape": [1, 28, 28], "mean": 0.1307, "std": 0.3081}),
        "wkbnoise.task": "classifier"}
LENET = {"conv1.weight": (6, 1, 5, 5), "conv1.bias": (6,), "conv2.weight": (16, 6, 5, 5), "conv2.bias": (16,),
         "fc1.weight": (120, 400), "fc1.bias": (120,), "fc2.weight": (84, 120), "fc2.bias": (84,),
         "fc3.weight": (10, 84), "fc3.bias": (10,)}


def lenet_tensors(seed=0):
    rng = np.random.default_rng(seed)
    return {k: (0.2 * rng.standard_normal(s)).astype(np.float32) for k, s in LENET.items()}


def write_raw(path, entries: dict, metadata=None):
    """A safetensors file written by hand: {name: (dtype_str, shape, raw bytes)} (lets us store BF16)."""
    header, blobs, off = {}, [], 0
    for name, (dtype, shape, raw) in entries.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    return path


@pytest.fixture
def good(tmp_path):
    p = tmp_path / "lenet.safetensors"
    save_file(lenet_tensors(), str(p), metadata=META)
    return p


def test_good_file_loads_with_names_unchanged(good):
    m = load_model(good)
    assert m.arch == "lenet5" and m.task == "classifier"
    assert [ly.name for ly in m.layers] == ["conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight", "fc3.weight"]
    assert [ly.kind for ly in m.layers] == ["conv", "conv", "linear", "linear", "linear"]
    ref = lenet_tensors()
    for ly in m.layers:
        np.testing.assert_array_equal(ly.weight, ref[ly.name])
        assert ly.weight.dtype == np.float32 and not ly.weight.flags.writeable and ly.n_weights == ref[ly.name].size


def test_f16_and_bf16_are_widened_exactly(tmp_path):
    rng = np.random.default_rng(3)
    w32 = rng.standard_normal((4, 5)).astype(np.float32)
    w16 = w32.astype(np.float16)
    bf16_bits = (w32.view(np.uint32) >> 16).astype(np.uint16)  # truncation to bfloat16
    p = write_raw(tmp_path / "mixed.safetensors", {
        "a": ("F16", w16.shape, w16.tobytes()), "b": ("BF16", w32.shape, bf16_bits.tobytes()),
        "c": ("F32", w32.shape, w32.tobytes()), "bn.num_batches_tracked": ("I64", (), np.int64(7).tobytes()),
        "embeddings.position_ids": ("I64", (1, 3), np.arange(3, dtype=np.int64).tobytes())})
    f = read_safetensors(p)
    assert f.dtypes == {"a": "F16", "b": "BF16", "c": "F32"}
    assert f.skipped == ("bn.num_batches_tracked", "embeddings.position_ids")
    np.testing.assert_array_equal(f.tensors["a"], w16.astype(np.float32))
    expected_bf16 = (bf16_bits.astype(np.uint32) << 16).view(np.float32)
    np.testing.assert_array_equal(f.tensors["b"], expected_bf16)
    assert np.max(np.abs(f.tensors["b"] - w32) / np.abs(w32)) <= 2.0**-7  # bf16 keeps 8 significant bits
    assert not np.array_equal(f.tensors["b"], w32)  # and it is not silently the float32 value
    np.testing.assert_array_equal(f.tensors["c"], w32)
    assert all(t.dtype == np.float32 for t in f.tensors.values())


def test_fold_batchnorm_against_explicit_formula():
    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((3, 2, 3, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    g, beta = rng.random(3).astype(np.float32) + 0.5, rng.standard_normal(3).astype(np.float32)
    mean, var = rng.standard_normal(3).astype(np.float32), rng.random(3).astype(np.float32) + 0.1
    w2, b2 = fold_batchnorm(w, b, g, beta, mean, var, 1e-5)
    x = rng.standard_normal((2, 3, 3)).astype(np.float64)  # one patch: conv output = <w[o], x> + b
    y = np.einsum("oijk,ijk->o", w.astype(np.float64), x) + b
    bn = g * (y - mean) / np.sqrt(var + 1e-5) + beta
    np.testing.assert_allclose(np.einsum("oijk,ijk->o", w2.astype(np.float64), x) + b2, bn, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------- bad files
def _bad(tmp_path, kind):
    p = tmp_path / "bad.safetensors"
    t = lenet_tensors()
    if kind == "not-safetensors":
        p.write_text("this is a CSV file,1,2,3\n" * 10)
    elif kind == "header-not-json":
        p.write_bytes(struct.pack("<Q", 16) + b"{not json at all" + b"\0" * 32)
    elif kind == "empty":
        p.write_bytes(b"")
    elif kind == "truncated":
        save_file(t, str(p), metadata=META)
        p.write_bytes(p.read_bytes()[:-1000])
    elif kind == "missing-keys":
        del t["fc3.weight"], t["fc3.bias"]
        save_file(t, str(p), metadata=META)
    elif kind == "unexpected-keys":
        t["fc4.weight"] = np.zeros((3, 3), np.float32)
        save_file(t, str(p), metadata=META)
    elif kind == "shape-mismatch":
        t["fc1.weight"] = np.zeros((120, 401), np.float32)
        save_file(t, str(p), metadata=META)
    elif kind == "unknown-arch":
        save_file(t, str(p), metadata={**META, "wkbnoise.arch": "alexnet"})
    elif kind == "no-arch":
        save_file(t, str(p), metadata={"format": "pt"})
    elif kind == "integer-weight":
        t["fc1.weight"] = np.zeros((120, 400), np.int8)
        save_file(t, str(p), metadata=META)
    elif kind == "pickle-pt":
        p = tmp_path / "model.pt"
        p.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    elif kind == "pickle-bin":
        p = tmp_path / "pytorch_model.bin"
        p.write_bytes(b"\x80\x02}q\x00." + b"\0" * 20)
    elif kind == "pickle-renamed":
        p.write_bytes(b"PK\x03\x04" + b"\x14\x00" * 200)
    return p


BAD = {  # kind -> fragments the one line must contain
    "not-safetensors": ["not safetensors"],
    "header-not-json": ["not JSON"],
    "empty": ["not safetensors or it is truncated"],
    "truncated": ["truncated"],
    "missing-keys": ["missing", "fc3.weight", "fc3.bias"],
    "unexpected-keys": ["unexpected", "fc4.weight"],
    "shape-mismatch": ["shape mismatch", "fc1.weight [120, 401] (expected [120, 400])"],
    "unknown-arch": ["'alexnet'", "lenet5"],
    "no-arch": ["no 'wkbnoise.arch'"],
    "integer-weight": ["fc1.weight", "integer tensor where a weight belongs"],
    "pickle-pt": ["pickle", "never unpickles", "save_file"],
    "pickle-bin": ["pickle", "save_pretrained"],
    "pickle-renamed": ["pickle", "never unpickles"],
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_file_raises_model_file_error(tmp_path, kind):
    p = _bad(tmp_path, kind)
    with pytest.raises(ModelFileError) as exc:
        load_model(p)
    for frag in BAD[kind]:
        assert frag in str(exc.value), (frag, str(exc.value))


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_file_one_line_through_cli(tmp_path, cli, kind):
    assert_one_line_error(cli("info", str(_bad(tmp_path, kind))), "wkbnoise: error:", *BAD[kind])


def test_cli_missing_file(cli, tmp_path):
    assert_one_line_error(cli("info", str(tmp_path / "nope.safetensors")), "does not exist")


def test_cli_info_on_a_file(cli, good):
    r = cli("info", str(good), "--json")
    assert r.returncode == 0, r.stderr
    d = r.json()
    assert d["arch"] == "lenet5" and [ly["name"] for ly in d["layers"]][0] == "conv1.weight"
    w = lenet_tensors()
    assert d["layers"][2]["w_inf"] == pytest.approx(float(np.abs(w["fc1.weight"]).max()), rel=1e-6)
    assert d["parameters"] == sum(int(np.prod(s)) for s in LENET.values())
    assert 0.0 <= d["float_accuracy"] <= 0.3  # random weights: near chance on the 10 classes
