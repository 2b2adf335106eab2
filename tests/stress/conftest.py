"""The load and fault suite: bounded in time and count, loopback only.

``make stress`` runs it at full length (``AUTHHOOKS_STRESS=full``: 60 s of load,
1,000 hooks) and prints a table of each scenario with its figures; ``make
test`` runs the short version of the same scenarios. The figures are reported,
never asserted as times: these machines are shared and noisy. What is asserted
is what must hold whatever the load: no errors on the token flow, nothing lost
or half-stored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pytest

FULL = os.environ.get("AUTHHOOKS_STRESS") == "full"


@dataclass
class Report:
    rows: list[tuple[str, str]] = field(default_factory=list)

    def add(self, scenario: str, figures: str) -> None:
        self.rows.append((scenario, figures))


REPORT = Report()


@pytest.fixture
def report() -> Report:
    return REPORT


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not REPORT.rows:
        return
    width = max(len(scenario) for scenario, _ in REPORT.rows)
    terminalreporter.section(f"stress ({'full' if FULL else 'short'} run)")
    terminalreporter.write_line(f"{'scenario'.ljust(width)}  figures")
    for scenario, figures in REPORT.rows:
        terminalreporter.write_line(f"{scenario.ljust(width)}  {figures}")
