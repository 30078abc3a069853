"""Fixtures of the diagnosis tests.

    recorded   recorded(name) -> the RunRecord of a labelled scenario (tests/diagnosis/
               scenarios.py), trained on the CPU once per session and shared by every test
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from diagnosis import RunRecord
from tests.diagnosis.harness import record_run
from tests.diagnosis.scenarios import SCENARIOS


@pytest.fixture(scope="session")
def recorded() -> Callable[[str], RunRecord]:
    specs = {scenario.name: scenario.spec for scenario in SCENARIOS}
    cache: dict[str, RunRecord] = {}

    def get(name: str) -> RunRecord:
        if name not in cache:
            cache[name] = record_run(specs[name])
        return cache[name]

    return get
