"""Settings: env-only, local defaults, fail-fast messages that name the variable and the fix."""

from __future__ import annotations

import pytest

from app.config import ConfigError, Settings, conflicting_openai_env, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in list(__import__("os").environ):
        if name.startswith(("MEM0_", "OPENAI_", "POSTGRES_", "OLLAMA_")) or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir("/")  # no stray .env file


def test_defaults_are_local_ollama_models_and_768_dims():
    settings = load_settings({})

    assert settings.llm_provider == settings.embedder_provider == "ollama"
    assert settings.ollama_base_url == "http://localhost:11434"
    assert settings.llm_model == "mistral:7b-instruct-q5_K_M"
    assert settings.embedder_model == "nomic-embed-text:latest"
    assert settings.embedding_dims == 768
    assert settings.uses_embedded_postgres


def test_environment_overrides_defaults(monkeypatch):
    monkeypatch.setenv("MEM0_LLM_MODEL", "llama3.2:3b")
    monkeypatch.setenv("MEM0_EMBEDDING_DIMS", "1024")
    monkeypatch.setenv("OLLAMA_BASE_URL", "http://host.docker.internal:11434/")

    settings = load_settings({})

    assert (settings.llm_model, settings.embedding_dims) == ("llama3.2:3b", 1024)
    assert settings.ollama_base_url == "http://host.docker.internal:11434"


@pytest.mark.parametrize("variable", ["MEM0_LLM_PROVIDER", "MEM0_EMBEDDER_PROVIDER"])
def test_a_non_ollama_provider_is_refused_with_the_variable_value_and_fix(monkeypatch, variable):
    monkeypatch.setenv(variable, "openai")

    with pytest.raises(ConfigError) as raised:
        load_settings({})

    assert (
        str(raised.value)
        == f"config error: {variable}='openai': only 'ollama' is supported; unset it or set it to 'ollama'"
    )


def test_openai_variables_conflict_unless_allowed(monkeypatch):
    with pytest.raises(ConfigError, match="OPENAI_API_KEY, OPENAI_BASE_URL is set"):
        load_settings({"OPENAI_API_KEY": "sk-x", "OPENAI_BASE_URL": "https://api.openai.com"})

    monkeypatch.setenv("MEM0_ALLOW_OPENAI_ENV", "true")
    assert load_settings({"OPENAI_API_KEY": "sk-x"}).allow_openai_env


def test_empty_openai_variables_do_not_count():
    assert conflicting_openai_env({"OPENAI_API_KEY": "", "PATH": "/bin"}) == []


def test_bad_numbers_name_their_variable(monkeypatch):
    monkeypatch.setenv("MEM0_EMBEDDING_DIMS", "lots")

    with pytest.raises(ConfigError, match="MEM0_EMBEDDING_DIMS='lots'"):
        load_settings({})


def test_a_collection_name_that_is_not_a_plain_identifier_is_refused(monkeypatch):
    monkeypatch.setenv("POSTGRES_COLLECTION_NAME", 'memories"; drop table x; --')

    with pytest.raises(ConfigError, match="POSTGRES_COLLECTION_NAME"):
        load_settings({})


def test_upstream_postgres_variables_build_the_connection_string(monkeypatch):
    monkeypatch.setenv("POSTGRES_HOST", "db")
    monkeypatch.setenv("POSTGRES_USER", "mem0")
    monkeypatch.setenv("POSTGRES_PASSWORD", "p@ss word")

    settings = load_settings({})

    assert settings.conninfo() == "postgresql://mem0:p%40ss%20word@db:5432/postgres"
    assert not settings.uses_embedded_postgres


def test_redacted_config_hides_passwords():
    settings = Settings(postgres_password="hunter2", database_url="postgresql://u:hunter2@db:5432/x")

    shown = settings.redacted()

    assert "hunter2" not in str(shown)
    assert shown["database_url"] == "postgresql://u:***@db:5432/x"
    assert shown["postgres_password"] == "***"
