"""Settings precedence: flags over HEARTH_* environment over the config file over defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.settings import Settings, SettingsError, load_settings


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings({}, env={"HEARTH_HOME": str(tmp_path)})
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.model == "smollm2-135m-instruct"
    assert settings.home_path == tmp_path


def test_precedence_flag_over_env_over_file(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("port: 7000\nhost: 0.0.0.0\nthreads: 1\n")
    env = {"HEARTH_HOME": str(tmp_path), "HEARTH_PORT": "9000", "HEARTH_THREADS": "2"}
    settings = load_settings({"port": 9100}, env=env)
    assert settings.port == 9100  # flag
    assert settings.threads == 2  # environment over file
    assert settings.host == "0.0.0.0"  # file over default


def test_explicit_config_file(tmp_path: Path) -> None:
    config = tmp_path / "other.yaml"
    config.write_text("context-length: 512\n")
    settings = load_settings({"config": str(config)}, env={"HEARTH_HOME": str(tmp_path / "home")})
    assert settings.context_length == 512


def test_config_from_environment(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("max_num_seqs: 8\n")
    settings = load_settings({}, env={"HEARTH_CONFIG": str(config), "HEARTH_HOME": str(tmp_path)})
    assert settings.max_num_seqs == 8


def test_missing_explicit_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings({"config": str(tmp_path / "absent.yaml")}, env={})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("port: [1, 2]\n", "invalid setting"),
        ("colour: blue\n", "invalid setting"),
        ("- a\n", "mapping"),
        ("port: : :\n", "not valid YAML"),
    ],
)
def test_bad_config_file(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "config.yaml").write_text(content)
    with pytest.raises(SettingsError, match=message):
        load_settings({}, env={"HEARTH_HOME": str(tmp_path)})


def test_bad_environment_value(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="port"):
        load_settings({}, env={"HEARTH_HOME": str(tmp_path), "HEARTH_PORT": "eighty"})
    with pytest.raises(SettingsError, match="port"):
        load_settings({}, env={"HEARTH_HOME": str(tmp_path), "HEARTH_PORT": "70000"})


def test_engine_options_follow_settings() -> None:
    options = Settings(threads=2, context_length=1024, kv_cache_gb=2).engine_options()
    assert (options.threads, options.context_length, options.kv_cache_gb) == (2, 1024, 2)


def test_sampling_defaults_are_llama_cpp_like_and_settable(tmp_path: Path) -> None:
    settings = load_settings({}, env={"HEARTH_HOME": str(tmp_path), "HEARTH_DEFAULT_TEMPERATURE": "0.2"})
    defaults = settings.sampling_defaults()
    assert (defaults.temperature, defaults.top_p, defaults.top_k, defaults.min_p) == (0.2, 0.95, 40, 0.05)
