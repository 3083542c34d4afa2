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
