"""The contract tier (`make test-contracts`): collected only when MEM0_CONTRACT_TESTS=1, so `make test` and
`make test-fast` never see it (its installs take minutes the first time). See README.md beside this file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ENABLED_BY = "MEM0_CONTRACT_TESTS"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if os.environ.get(ENABLED_BY) == "1":
        return None
    return collection_path.name != "conftest.py"
