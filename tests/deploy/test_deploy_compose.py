"""docker-compose.yml is valid Compose and starts the stack in a safe order (checked offline)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_fixtures import REPO, SERVICES

COMPOSE_FILE = REPO / "docker-compose.yml"
INIT_JOBS = ("kafka-init", "s3-init", "migrate")
INFRA = ("kafka", "seaweedfs", "postgres")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def test_compose_file_matches_the_compose_specification() -> None:
    check_jsonschema = Path(sys.executable).with_name("check-jsonschema")
    result = subprocess.run(
        [str(check_jsonschema), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_long_running_services_have_health_checks(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name in INIT_JOBS:
            continue
        assert service.get("healthcheck", {}).get("test"), name


def test_avatarflow_services_are_built_from_their_dockerfiles(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in SERVICES:
        build = services[name]["build"]
        assert build["context"] == "."
        assert build["dockerfile"] == "Dockerfile" and build["args"]["SERVICE"] == name
        assert (REPO / build["dockerfile"]).is_file()
        # Same hardening as the Kubernetes pods.
        assert services[name]["user"] == "10001:10001" and services[name]["read_only"] is True
        assert services[name]["cap_drop"] == ["ALL"]
        assert services[name]["environment"]["ORT_DISABLE_TELEMETRY"] == "1"


def test_services_wait_for_healthy_infrastructure_and_finished_init_jobs(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in (*SERVICES, "animator-gpu"):
        depends_on = services[name]["depends_on"]
        assert depends_on["kafka"]["condition"] == "service_healthy", name
        assert depends_on["seaweedfs"]["condition"] == "service_healthy", name
        assert depends_on["kafka-init"]["condition"] == "service_completed_successfully", name
        assert depends_on["s3-init"]["condition"] == "service_completed_successfully", name
    notifier = services["notifier"]["depends_on"]
    assert notifier["migrate"]["condition"] == "service_completed_successfully"
    assert notifier["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["kafka-init"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    # Every depends_on names a real service and states a condition.
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            assert dependency in services, (name, dependency)
            conditions = {"service_healthy", "service_completed_successfully"}
            assert rule["condition"] in conditions, (name, dependency)


def test_init_jobs_provision_topics_bucket_and_schema(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["kafka-init"]["entrypoint"][:3] == ["python", "-m", "avatarflow_runtime.provision"]
    assert services["migrate"]["entrypoint"] == ["python", "-m", "avatarflow_notifier.migrate"]
    assert "create_bucket" in "".join(services["s3-init"]["entrypoint"])
    for name in INIT_JOBS:
        assert services[name]["restart"] == "no", name


def test_infrastructure_is_kraft_kafka_seaweedfs_and_postgres(compose: dict[str, Any]) -> None:
    services = compose["services"]
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]
    assert kafka["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    seaweedfs = services["seaweedfs"]
    assert seaweedfs["image"].startswith("chrislusf/seaweedfs:")
    assert "-s3" in seaweedfs["command"] and "-master.telemetry=false" in seaweedfs["command"]
    assert services["postgres"]["image"].startswith("postgres:")
    for name in INFRA:
        assert services[name]["healthcheck"]["test"], name


def test_gpu_animator_is_a_profile_with_a_device_reservation(compose: dict[str, Any]) -> None:
    services = compose["services"]
    gpu = services["animator-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert gpu["build"]["dockerfile"] == "Dockerfile"
    assert gpu["build"]["args"] == {
        "SERVICE": "animator",
        "EXTRA": "gpu",
        "APT_PACKAGES": "espeak-ng",
        "VARIANT": "gpu",
    }
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert gpu["environment"]["AVATARFLOW_ANIMATOR_EXECUTION_PROVIDER"] == "cuda"
    # The CPU variant runs when the gpu profile is off (and no other service is profile-gated).
    cpu = services["animator"]
    assert "profiles" not in cpu and "deploy" not in cpu
    assert cpu["environment"]["AVATARFLOW_ANIMATOR_EXECUTION_PROVIDER"] == "cpu"
    assert [n for n, s in services.items() if "profiles" in s] == ["animator-gpu"]
