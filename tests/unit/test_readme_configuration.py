"""Every setting the server reads is documented in the README's Configuration section."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import AliasChoices, SecretStr

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


def _documented_defaults() -> dict[str, str | None]:
    """{variable: the first `value` of its default cell}, None where the README writes unset or empty."""
    documented: dict[str, str | None] = {}
    for line in _configuration_section().splitlines():
        if not line.startswith("| `"):
            continue
        variables, defaults = (cell.strip() for cell in line.strip("|").split("|")[:2])
        names = re.findall(r"`([A-Z][A-Z0-9_]*)`", variables)
        # "`A` / `B`" rows give each variable its own default; "`A`, `B`" and "(or `B`)" rows share one.
        parts = defaults.split(" / ") if " / " in variables else [defaults] * len(names)
        for name, part in zip(names, parts, strict=True):
            value = re.search(r"`([^`]*)`", part)
            documented[name] = value.group(1) if value else None
    return documented


def _as_documented(value: object) -> str | None:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if value is None or value in ("", []):
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


def test_the_documented_defaults_are_the_settings_defaults():
    documented = _documented_defaults()
    wrong = []
    for field in Settings.model_fields.values():
        assert isinstance(field.validation_alias, AliasChoices)
        for name in field.validation_alias.choices:
            shown = documented.get(str(name))
            if isinstance(field.default, Path) and shown is not None:
                shown = str(Path(shown))
            if shown != _as_documented(field.default):
                wrong.append(f"{name}: README {shown!r}, app/config.py {_as_documented(field.default)!r}")

    assert wrong == [], "fix README.md's Configuration section: " + "; ".join(wrong)
