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
    assert not path.exists()  # durable in the journal; the HDF5 file is written at checkpoints and close
    from_journal = RunStore(path, _config())
    assert from_journal.keys() == ["models/a", "points/a/r0/tac/0.2500"]
    from_journal.close()
    assert path.exists() and not (tmp_path / "run.h5.journal").exists()
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
    store = RunStore(path, _config(trials=30))
    store.put("models/a", {"clean": 1.0})
    store.put("models/b", {"clean": 1.0})
    with pytest.raises(StoreError, match="trials"):  # a journal alone is refused too
        RunStore(path, _config(trials=10))
    store.close()
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
    store = RunStore(path, _config())
    store.put("models/a", {"clean": 1.0})
    store.close()
    store = RunStore(path, _config())
    store.put("models/b", {"clean": 1.0})
    with open(tmp_path / "run.h5.journal", "ab") as fh:
        fh.write(b'{"key": "models/c", "attrs": {}, "da')  # a line cut off by a kill
    (tmp_path / "run.h5.tmp").write_bytes(b"\x89HDF half a file")
    store = RunStore(path, _config())
    assert store.keys() == ["models/a", "models/b"] and not (tmp_path / "run.h5.tmp").exists()


def test_config_json_roundtrip():
    text = _config(budgets=(0.25, 1.0))
    assert SweepConfig.from_json(text).to_json() == text


# -- resume after SIGKILL: a subprocess killed mid-run at random points -------------------------------------
_SCRIPT = r'''
import sys
import numpy as np
sys.path.insert(0, {tests!r})
sys.path.insert(0, {root!r})
from standin_models import TwoLayer
from wkbnoise.evaluation.config import ModelSpec, RateSpec, SweepConfig
from wkbnoise.evaluation.sweep import run_sweep

cfg = SweepConfig(models=(ModelSpec("a", (RateSpec.symmetric(0.05),)),),
                  methods=("none", "correct-only", "uniform-msp", "magnitude", "tac", "tac-bayes", "gaussian"),
                  budgets=(0.25, 1.0, 2.0), trials=4, calibration=64, draws=2)

def loader(spec):
    return TwoLayer(d_in=64, d_hidden=48, d_out=10, relu=True, seed=len(spec.name) + ord(spec.name[0]))

def inputs(config, model):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((300, 64)).astype(np.float32)
    return x, np.argmax(model(x), axis=1), rng.standard_normal((64, 64)).astype(np.float32)

run_sweep(cfg, sys.argv[1], progress=False, loader=loader, inputs=inputs)
'''


def _records(path):
    """(config, {key: (attrs as repr, data)}) of a run, read-only (HDF5 file plus journal)."""
    store = RunStore.read(path)
    def norm(v):
        v = v.tolist() if isinstance(v, np.ndarray | np.generic) else v
        return repr(v.decode() if isinstance(v, bytes) else v)

    out = {k: ({a: norm(v) for a, v in attrs.items()}, data)
           for k, (attrs, data) in store.records.items()}
    return store.config, out


@pytest.mark.slow
def test_resume_after_sigkill_matches_uninterrupted(tmp_path):
    import random
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    script = tmp_path / "sweep.py"
    script.write_text(_SCRIPT.format(tests=str(Path(__file__).parent), root=str(Path(__file__).parents[1])))
    ref = tmp_path / "ref.h5"
    subprocess.run([sys.executable, str(script), str(ref)], check=True, timeout=600)
    config, expected = _records(ref)
    total = len(expected)
    assert total > 20

    run = tmp_path / "run.h5"
    journal = tmp_path / "run.h5.journal"
    rng = random.Random(1234)
    targets = sorted(rng.sample(range(1, total - 2), 3))
    kills = 0
    for target in targets:
        proc = subprocess.Popen([sys.executable, str(script), str(run)])
        try:
            while proc.poll() is None:
                try:
                    n = len(_records(run)[1]) if run.exists() or journal.exists() else 0
                except (OSError, StoreError):
                    n = 0  # caught between rename and read, or the journal's first line half written: try again
                if n >= target:
                    proc.send_signal(signal.SIGKILL)
                    kills += 1
                    break
                time.sleep(0.005)
        except BaseException:
            proc.kill()  # never leave the writer running into the next test
            raise
        finally:
            proc.wait(timeout=600)
        got = _records(run)[1]
        # nothing finished is lost and nothing is half written: every record present equals the reference,
        # except that a point's trial arrays may be a prefix of it (the crossing search extends a point's
        # record with more trials later; the kill may fall between two extensions)
        for key, (attrs, data) in got.items():
            assert attrs == expected[key][0], key
            lengths = set()
            for k, v in data.items():
                want = expected[key][1][k]
                if key.startswith("points/") and v.ndim == 1 and 0 < len(v) <= len(want):
                    lengths.add(len(v))
                    want = want[:len(v)]
                np.testing.assert_array_equal(v, want, err_msg=key)
            assert len(lengths) <= 1, (key, lengths)  # a record's trial arrays are written together
    assert kills >= 2
    subprocess.run([sys.executable, str(script), str(run)], check=True, timeout=600)
    config2, final = _records(run)
    assert config2 == config and sorted(final) == sorted(expected)
    for key, (attrs, data) in final.items():
        assert attrs == expected[key][0], key
        assert sorted(data) == sorted(expected[key][1])
        for k, v in data.items():
            np.testing.assert_array_equal(v, expected[key][1][k], err_msg=key)
