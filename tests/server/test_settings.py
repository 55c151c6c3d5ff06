"""Settings precedence: flags over HEARTH_* environment over the config file over defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.settings import EngineSettings, Settings, SettingsError, load_settings


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings({}, env={"HEARTH_HOME": str(tmp_path)})
    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == 8000
    assert settings.engine.model == "smollm2-135m-instruct"
    assert settings.home_path == tmp_path


def test_precedence_flag_over_env_over_file(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("port: 7000\nhost: 0.0.0.0\nthreads: 1\n")
    env = {"HEARTH_HOME": str(tmp_path), "HEARTH_PORT": "9000", "HEARTH_THREADS": "2"}
    settings = load_settings({"port": 9100}, env=env)
    assert settings.server.port == 9100  # flag
    assert settings.engine.threads == 2  # environment over file
    assert settings.server.host == "0.0.0.0"  # file over default


def test_explicit_config_file(tmp_path: Path) -> None:
    config = tmp_path / "other.yaml"
    config.write_text("context-length: 512\n")
    settings = load_settings({"config": str(config)}, env={"HEARTH_HOME": str(tmp_path / "home")})
    assert settings.engine.context_length == 512


def test_config_from_environment(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("max_num_seqs: 8\n")
    settings = load_settings({}, env={"HEARTH_CONFIG": str(config), "HEARTH_HOME": str(tmp_path)})
    assert settings.engine.max_num_seqs == 8


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
    options = Settings(engine=EngineSettings(threads=2, context_length=1024, kv_cache_gb=2)).engine_options()
    assert (options.threads, options.context_length, options.kv_cache_gb) == (2, 1024, 2)


def test_sampling_defaults_are_llama_cpp_like_and_settable(tmp_path: Path) -> None:
    settings = load_settings({}, env={"HEARTH_HOME": str(tmp_path), "HEARTH_DEFAULT_TEMPERATURE": "0.2"})
    defaults = settings.sampling_defaults()
    assert (defaults.temperature, defaults.top_p, defaults.top_k, defaults.min_p) == (0.2, 0.95, 40, 0.05)


def test_every_old_flat_name_reaches_its_nested_field(tmp_path: Path) -> None:
    """A flag, a HEARTH_* variable, a flat config key and a nested one each set `scheduler.max_queue`."""
    home = {"HEARTH_HOME": str(tmp_path)}
    assert load_settings({"max_queue": 1}, env=home).scheduler.max_queue == 1
    assert load_settings({}, env={**home, "HEARTH_MAX_QUEUE": "2"}).scheduler.max_queue == 2
    (tmp_path / "config.yaml").write_text("max_queue: 3\nkv-cache-gb: 2\n")
    from_flat = load_settings({}, env=home)
    assert (from_flat.scheduler.max_queue, from_flat.engine.kv_cache_gb) == (3, 2.0)
    (tmp_path / "config.yaml").write_text("scheduler:\n  max_queue: 4\n  keep-alive-s: 5\nmax_num_seqs: 6\n")
    nested = load_settings({}, env=home)
    assert (nested.scheduler.max_queue, nested.scheduler.keep_alive_s, nested.engine.max_num_seqs) == (4, 5.0, 6)


def test_flat_and_nested_keys_of_one_section_merge_and_layers_keep_their_order(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("scheduler: {max_queue: 4}\nstarvation_s: 7\n")
    settings = load_settings({"queue_timeout_s": 9.0}, env={"HEARTH_HOME": str(tmp_path), "HEARTH_MAX_QUEUE": "8"})
    assert settings.scheduler.max_queue == 8  # environment over the file's nested key
    assert settings.scheduler.starvation_s == 7.0  # the file's flat key beside its nested section
    assert settings.scheduler.queue_timeout_s == 9.0  # flag
    assert settings.scheduler.keep_alive_s == 300.0  # default


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("scheduler: {colour: blue}\n", r"unknown field `colour`.*scheduler"),
        ("scheduler: {max_queue: many}\n", r"max_queue"),
        ("scheduler: 4\n", r"scheduler"),
    ],
)
def test_bad_nested_config_is_an_error(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "config.yaml").write_text(content)
    with pytest.raises(SettingsError, match=message):
        load_settings({}, env={"HEARTH_HOME": str(tmp_path)})


def test_the_home_flag_wins_over_a_home_in_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("server: {home: /elsewhere}\n")
    assert load_settings({"home": str(tmp_path)}, env={}).home_path == tmp_path
