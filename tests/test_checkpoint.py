import hashlib
import json
import os
import pickle
import signal
import subprocess
import sys
import time

import pytest
import torch

from pilot.agents.common import checkpoint as ckpt
from pilot.errors import UserError


def _state(step: int, size: int = 16) -> dict:
    return {"modules": {"net": {"w": torch.full((size,), float(step))}}, "step": step}


def test_roundtrip_latest_and_pruning(tmp_path):
    for step in (10, 20, 30, 40):
        ckpt.save(tmp_path, _state(step), {"step": step, "algo": "x"}, keep=2)
    loaded = ckpt.load(tmp_path)
    assert loaded.meta["step"] == 40 and loaded.meta["format"] == ckpt.FORMAT
    assert torch.equal(loaded.state["modules"]["net"]["w"], torch.full((16,), 40.0))
    assert sorted(p.name for p in tmp_path.glob("step_*.pt")) == [
        "step_000000030.pt",
        "step_000000040.pt",
    ]
    assert ckpt.load(tmp_path / "step_000000030.json").meta["step"] == 30
    assert not list(tmp_path.glob("*.tmp"))


def test_tampered_bytes_are_refused(tmp_path):
    path = ckpt.save(tmp_path, _state(1), {"step": 1})
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match="tampered"):
        ckpt.load(tmp_path)


class _Payload:
    """Unpickling this would create a marker file: the proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickled_object_is_never_executed(tmp_path):
    path = ckpt.save(tmp_path, _state(1), {"step": 1})
    marker = tmp_path / "pwned"
    evil = pickle.dumps({"modules": _Payload(marker)})
    # a careful attacker also rewrites the hash in the metadata
    torch.save({"x": 1}, path)  # keep a torch zip layout, then replace the pickle inside
    import zipfile

    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        contents = {n: z.read(n) for n in names}
    pkl = next(n for n in names if n.endswith("data.pkl"))
    contents[pkl] = evil
    with zipfile.ZipFile(path, "w") as z:
        for n in names:
            z.writestr(n, contents[n])
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(UserError, match="refusing"):
        ckpt.load(tmp_path)
    assert not marker.exists()


def test_foreign_files_are_refused(tmp_path):
    foreign = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2)}, foreign)
    with pytest.raises(UserError, match="no metadata"):
        ckpt.load(foreign)
    (tmp_path / "model.json").write_text('{"format": "something-else"}')
    with pytest.raises(UserError, match="not pilot checkpoint metadata"):
        ckpt.load(foreign)
    with pytest.raises(UserError, match="no pilot checkpoint"):
        ckpt.load(tmp_path)
    with pytest.raises(UserError, match="no such"):
        ckpt.load(tmp_path / "nothing")


WRITER = """
import sys, torch
from pilot.agents.common import checkpoint as ckpt
folder = sys.argv[1]
step = int(sys.argv[2])
first = True
while True:
    step += 1
    state = {"modules": {"net": {"w": torch.full((2_000_000,), float(step))}}, "step": step}
    ckpt.save(folder, state, {"step": step}, keep=2)
    if first:  # the kills below land on saves that follow a completed one
        print("ready", flush=True)
        first = False
"""


def test_sigkill_during_saves_never_corrupts_latest(tmp_path):
    """Kill a process that saves 8 MB checkpoints back to back at varied instants."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    folder = tmp_path / "ckpts"
    step = 0
    for delay in (0.35, 0.5, 0.62, 0.8, 1.1):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(folder), str(step)], stdout=subprocess.PIPE
        )
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        loaded = ckpt.load(folder)  # verifies the hash of the latest checkpoint
        step = loaded.meta["step"]
        assert torch.all(loaded.state["modules"]["net"]["w"] == float(step))
    assert step > 0


def _two(tmp_path):
    for step in (10, 20):
        ckpt.save(tmp_path, _state(step), {"step": step})
    return tmp_path / "step_000000020.pt"


def test_refusals_say_what_is_wrong_and_name_the_newest_intact_one(tmp_path):
    latest = _two(tmp_path)
    data = latest.read_bytes()
    latest.write_bytes(data[:100])
    with pytest.raises(ckpt.CheckpointRefused) as refused:
        ckpt.load(tmp_path)
    message = str(refused.value)
    assert f"is truncated: 100 of the {len(data):,} bytes" in message
    assert "newest intact checkpoint there is step_000000010" in message
    assert refused.value.intact == tmp_path / "step_000000010.pt"
    # bytes that are no torch file, with the hash rewritten to match
    latest.write_bytes(b"not a zip archive at all" * 10)
    meta_path = latest.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta["sha256"] = hashlib.sha256(latest.read_bytes()).hexdigest()
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(UserError, match="is not a torch tensor file") as refused:
        ckpt.load(tmp_path)
    assert "weights_only" not in str(refused.value)
    # the older one still loads by name
    assert ckpt.load(tmp_path, name="step_000000010").meta["step"] == 10


def test_refusing_a_pickle_never_repeats_torchs_unsafe_advice(tmp_path):
    path = _two(tmp_path)
    torch.save({"x": _Payload(tmp_path / "pwned")}, path, _use_new_zipfile_serialization=True)
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(UserError) as refused:
        ckpt.load(tmp_path)
    message = str(refused.value)
    assert "objects other than tensors" in message and "step_000000010" in message
    assert "weights_only" not in message and "trusted" not in message
    assert not (tmp_path / "pwned").exists()


def test_the_next_save_removes_orphan_temporary_files_only(tmp_path):
    _two(tmp_path)
    orphans = [tmp_path / ".step_000000030.pt.a1b2.tmp", tmp_path / ".latest.json.zz.tmp"]
    for p in orphans:
        p.write_bytes(b"half")
    mine = tmp_path / "notes.tmp"  # not a name a save writes: left alone
    mine.write_text("keep")
    ckpt.save(tmp_path, _state(30), {"step": 30})
    assert not any(p.exists() for p in orphans) and mine.exists()
    assert ckpt.load(tmp_path).meta["step"] == 30


def test_saving_an_older_step_keeps_the_newer_checkpoints(tmp_path):
    """A resume from an older checkpoint must not prune the newer ones it has not reached."""
    for step in (10, 20, 30):
        ckpt.save(tmp_path, _state(step), {"step": step}, keep=2)
    ckpt.save(tmp_path, _state(15), {"step": 15}, keep=2)
    names = sorted(p.stem for p in tmp_path.glob("step_*.pt"))
    assert names == ["step_000000015", "step_000000020", "step_000000030"]
    assert ckpt.load(tmp_path).meta["step"] == 15


def test_a_run_without_checkpoints_says_so(tmp_path):
    (tmp_path / "run.json").write_text("{}")
    with pytest.raises(UserError, match="has no checkpoint yet"):
        ckpt.resolve(tmp_path)
