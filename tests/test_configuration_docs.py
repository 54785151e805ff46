"""docs/configuration.md says what the settings classes say (regenerate it when they change)."""

from __future__ import annotations

from pathlib import Path

from tests.config_docs import render

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def test_configuration_page_matches_the_settings_classes() -> None:
    assert DOC.read_text() == render(), (
        "docs/configuration.md is out of date: python -m tests.config_docs > docs/configuration.md"
    )
