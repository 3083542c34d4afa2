import os

import pytest
import torch

# Tests share two cores with nothing else; one torch thread keeps timings stable and
# avoids oversubscription when pytest and the envs' threads compete.
torch.set_num_threads(1)
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


@pytest.fixture(autouse=True)
def _no_display(monkeypatch):
    """`pilot watch` must take the file path in tests, whatever the developer's machine has."""
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
