"""The contract tier (`make test-contracts`): always listed, run only when MEM0_CONTRACT_TESTS=1, so `make test` and
`make test-fast` show it skipped with the command that runs it (its installs take minutes the first time). See
README.md beside this file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ENABLED_BY = "MEM0_CONTRACT_TESTS"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get(ENABLED_BY) == "1":
        return
    skip = pytest.mark.skip(reason=f"the contract tier: run it with `make test-contracts` ({ENABLED_BY}=1)")
    for item in items:
        if Path(str(item.path)).is_relative_to(Path(__file__).parent):
            item.add_marker(skip)
