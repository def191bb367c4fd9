"""The README's configuration table is generated from the settings classes: it must not drift."""

from __future__ import annotations

from pathlib import Path

from avatarflow.config_table import markdown, rows

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_configuration_table_matches_the_settings() -> None:
    text = README.read_text()
    assert markdown() in text, "README configuration table drifted: run python -m avatarflow.config_table"


def test_every_setting_is_documented() -> None:
    undocumented = [env for env, _default, _where, doc in rows() if not doc.strip()]
    assert undocumented == []
