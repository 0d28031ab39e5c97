"""Every setting the server reads is documented in the README's Configuration section."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import AliasChoices

from app.config import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def _configuration_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Configuration")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def _environment_names() -> list[str]:
    names = []
    for field in Settings.model_fields.values():
        assert isinstance(field.validation_alias, AliasChoices), "every setting is read from a named variable"
        names += [str(choice) for choice in field.validation_alias.choices]
    return names


def test_every_setting_is_in_the_readme_configuration_section():
    section = _configuration_section()

    missing = [name for name in _environment_names() if not re.search(rf"`{name}`", section)]

    assert missing == [], f"document these in README.md's Configuration section: {missing}"


def test_the_configuration_section_names_no_setting_that_does_not_exist():
    documented = set(re.findall(r"`((?:MEM0|POSTGRES|OLLAMA)_[A-Z0-9_]+|DATABASE_URL)`", _configuration_section()))

    assert documented - set(_environment_names()) == set()
