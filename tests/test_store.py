"""The HDF5 run file: durable records, resume, refusal of another configuration."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from wkbnoise import StoreError
from wkbnoise.evaluation.config import ModelSpec, RateSpec, SweepConfig
from wkbnoise.evaluation.store import RunStore


def _config(**kw):
    return SweepConfig(models=(ModelSpec("lenet5", (RateSpec.symmetric(0.1),)),), **kw).to_json()


def test_roundtrip_and_resume(tmp_path):
    path = tmp_path / "run.h5"
    store = RunStore(path, _config(), {"numba": "x"})
    store.put("points/a/r0/tac/0.2500", {"method": "tac", "plan": {"fc": 2}}, {"accuracy": np.arange(3.0)})
    store.put("models/a", {"clean": 0.99}, {"G": np.array([1.0, 2.0])})
    again = RunStore(path, _config())
    assert again.keys() == ["models/a", "points/a/r0/tac/0.2500"]
    attrs, data = again.get("points/a/r0/tac/0.2500")
    np.testing.assert_array_equal(data["accuracy"], [0, 1, 2])
    assert attrs["method"] == "tac" and attrs["plan"] == '{"fc": 2}'
    assert again.versions["numba"] == "x"
    with h5py.File(path) as f:
        assert f.attrs["config"] == _config()


def test_refuses_other_configuration(tmp_path):
    path = tmp_path / "run.h5"
    RunStore(path, _config(trials=30)).put("models/a", {"clean": 1.0})
    before = path.read_bytes()
    with pytest.raises(StoreError, match="trials") as err:
        RunStore(path, _config(trials=10))
    assert "another --out" in str(err.value)
    assert path.read_bytes() == before  # never overwritten


def test_refuses_foreign_file(tmp_path):
    path = tmp_path / "x.h5"
    path.write_text("not hdf5")
    with pytest.raises(StoreError, match="not an HDF5"):
        RunStore(path, _config())
    with h5py.File(tmp_path / "y.h5", "w") as f:
        f.attrs["hello"] = 1
    with pytest.raises(StoreError, match="not a wkbnoise run file"):
        RunStore(tmp_path / "y.h5", _config())


def test_cut_off_write_is_dropped(tmp_path):
    path = tmp_path / "run.h5"
    RunStore(path, _config()).put("models/a", {"clean": 1.0})
    (tmp_path / "run.h5.tmp").write_bytes(b"\x89HDF half a file")
    store = RunStore(path, _config())
    assert store.keys() == ["models/a"] and not (tmp_path / "run.h5.tmp").exists()


def test_config_json_roundtrip():
    text = _config(budgets=(0.25, 1.0))
    assert SweepConfig.from_json(text).to_json() == text
