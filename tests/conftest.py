from __future__ import annotations

from pathlib import Path

import pytest
import torch

# The session-scoped artifact and image fixtures of the runtime tests, visible to every test
# module without importing them (an import would shadow them as unused names).
pytest_plugins = ["test_runtime_fixtures"]

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} not present")
    return SHARED_DATA
