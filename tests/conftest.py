import os

import pytest
import torch

# Tests share two cores with nothing else; one torch thread keeps timings stable and
# avoids oversubscription when pytest and the envs' threads compete.
torch.set_num_threads(1)
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


#: Test files that start a local Ray cluster: run in one xdist group, so one at a time.
RAY_FILES = {"test_sweep.py", "test_leaderboard_ray.py", "test_documented_commands.py"}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in RAY_FILES:
            item.add_marker(pytest.mark.xdist_group("ray"))


@pytest.fixture(autouse=True)
def _no_display(monkeypatch):
    """`pilot watch` must take the file path in tests, whatever the developer's machine has."""
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
