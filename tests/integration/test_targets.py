"""Runs every integration target (amazon.aws shape) against the moto server."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_playbook

TARGETS = Path(__file__).parent / "targets"


@pytest.mark.parametrize("target", sorted(p.name for p in TARGETS.iterdir() if (p / "tasks" / "main.yml").exists()))
def test_integration_target(moto, target):
    result = run_playbook(
        Path(__file__).parent / "run_target.yml",
        {"target": target, "constellation_aws_endpoint_url": moto.url},
    )
    assert result.rc == 0, result.output
    assert result.recap()["failed"] == 0
