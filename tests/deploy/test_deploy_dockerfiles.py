"""The one parametrised Dockerfile follows the image rules for every image docker-compose.yml builds
from it (parsed and rendered offline with each image's build arguments; no Docker engine needed)."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from avatarflow_runtime.entrypoint import SERVICES as ENTRYPOINT_SERVICES
from avatarflow_runtime.entrypoint import image_service, warm_up
from deploy_fixtures import REPO, SERVICES

DOCKERFILE = REPO / "Dockerfile"


@dataclass(frozen=True)
class Instruction:
    stage: int
    keyword: str
    args: str


def logical_lines(path: Path) -> list[str]:
    """Instructions with line continuations joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line.startswith("#") or (not pending and not line):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    return logical


def substitute(text: str, values: dict[str, str]) -> str:
    """Docker's ${NAME}, ${NAME:+word} and $NAME for the build arguments known so far (others stay)."""

    def plus(match: re.Match[str]) -> str:
        name, word = match.group(1), match.group(2)
        return substitute(word, values) if values.get(name) else ""

    text = re.sub(r"\$\{(\w+):\+([^}]*\}?)\}", plus, text)
    text = re.sub(r"\$\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), text)
    return re.sub(r"\$(\w+)", lambda m: values.get(m.group(1), m.group(0)), text)


def render(build_args: dict[str, str]) -> list[Instruction]:
    """The Dockerfile as the builder sees it for these arguments: ARG defaults, overrides, per stage."""
    global_args: dict[str, str] = {}
    stage_args: dict[str, str] = {}
    instructions: list[Instruction] = []
    stage = -1
    for line in logical_lines(DOCKERFILE):
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "ARG":
            name, _, default = args.strip().partition("=")
            value = build_args.get(name, default.strip('"'))
            (global_args if stage < 0 else stage_args)[name] = value
            continue
        if keyword == "FROM":
            stage += 1
            args = substitute(args, global_args)
            stage_args = {}
        else:
            args = substitute(args, {**global_args, **stage_args})
        instructions.append(Instruction(stage, keyword, args.strip()))
    return instructions


def stage_named(instructions: list[Instruction]) -> dict[str, int]:
    names: dict[str, int] = {}
    for i in instructions:
        if i.keyword == "FROM" and " AS " in i.args.upper():
            names[re.split(r"\s+AS\s+", i.args, flags=re.I)[1].strip()] = i.stage
    return names


def base_image(instructions: list[Instruction], stage: int) -> str:
    """The external image a stage finally rests on (following FROM <stage name> chains)."""
    names = stage_named(instructions)
    (source,) = [
        re.split(r"\s+AS\s+", i.args, flags=re.I)[0] for i in instructions if i.keyword == "FROM" and i.stage == stage
    ]
    return base_image(instructions, names[source]) if source in names else source


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def stage_chain(instructions: list[Instruction], stage: int) -> list[Instruction]:
    """A stage's instructions after those of the stages it is built on (what its ENV inherits)."""
    names = stage_named(instructions)
    (source,) = [
        re.split(r"\s+AS\s+", i.args, flags=re.I)[0] for i in instructions if i.keyword == "FROM" and i.stage == stage
    ]
    own = [i for i in instructions if i.stage == stage]
    return (stage_chain(instructions, names[source]) if source in names else []) + own


def env_of(instructions: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in instructions:
        if instruction.keyword == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", instruction.args)))
    return env


def compose_builds() -> dict[str, dict[str, str]]:
    """Every image docker-compose.yml builds, with its build arguments (the source of truth)."""
    compose: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    builds = {}
    for name, service in compose["services"].items():
        build = service.get("build")
        if build and build.get("dockerfile") == "Dockerfile":
            builds[name] = {k: str(v) for k, v in build.get("args", {}).items()}
    return builds


BUILDS = compose_builds()


@pytest.fixture(scope="module", params=sorted(BUILDS))
def image(request: pytest.FixtureRequest) -> tuple[str, dict[str, str], list[Instruction]]:
    args = BUILDS[request.param]
    return request.param, args, render(args)


def test_every_service_and_the_gpu_animator_are_built_from_the_one_dockerfile() -> None:
    assert set(BUILDS) >= {*SERVICES, "animator-gpu"}, sorted(BUILDS)
    assert {args["SERVICE"] for args in BUILDS.values()} == set(SERVICES) == set(ENTRYPOINT_SERVICES)
    assert not list(REPO.glob("services/*/Dockerfile*")), "per-service Dockerfiles are back"


def test_dockerignore_keeps_the_context_small() -> None:
    patterns = set((REPO / ".dockerignore").read_text().split())
    assert {"**/.venv", ".git", "var", "tests"} <= patterns


def test_builder_syncs_the_frozen_lock_for_one_package(image: tuple[str, dict[str, str], list[Instruction]]) -> None:
    name, args, instructions = image
    service = args["SERVICE"]
    syncs = [i.args for i in instructions if i.keyword == "RUN" and "uv sync" in i.args]
    assert len(syncs) == 2, name
    for sync in syncs:
        assert "--frozen" in sync and "--no-dev" in sync, sync
        assert f"--package avatarflow-{service} " in sync + " ", sync
        if service == "animator":
            assert ("--extra gpu" in sync) == (name == "animator-gpu"), sync
            assert ("--extra cpu" in sync) == (name == "animator"), sync
        else:
            assert "--extra" not in sync, sync
    copied = " ".join(i.args for i in instructions if i.keyword == "COPY")
    assert "uv.lock" in copied and f"services/{service}/" in copied
    # The runtime stage gets the venv, not the build tools.
    runtime = final_stage(instructions)
    copies = [i.args for i in runtime if i.keyword == "COPY"]
    assert any("--from=builder" in a and "/opt/avatarflow/venv" in a for a in copies)
    assert not any("uv " in i.args for i in runtime if i.keyword == "RUN")


def test_runtime_stage_runs_as_uid_10001(image: tuple[str, dict[str, str], list[Instruction]]) -> None:
    name, _, instructions = image
    runtime = final_stage(instructions)
    users = [i.args for i in runtime if i.keyword == "USER"]
    assert users and users[-1].split(":")[0] == "10001", name
    last_user = max(n for n, i in enumerate(runtime) if i.keyword == "USER")
    entrypoint = max(n for n, i in enumerate(runtime) if i.keyword == "ENTRYPOINT")
    assert last_user < entrypoint


def test_runtime_base_image(image: tuple[str, dict[str, str], list[Instruction]]) -> None:
    name, _, instructions = image
    base = base_image(instructions, max(i.stage for i in instructions))
    builder = base_image(instructions, stage_named(instructions)["builder"])
    assert base == builder, "the venv must be built on the runtime's own interpreter"
    if name == "animator-gpu":
        assert re.match(r"nvidia/cuda:12\.[0-9.]+-cudnn-runtime-ubuntu(22|24)\.04$", base), base
        chain = stage_chain(instructions, max(i.stage for i in instructions))
        assert any("python3.11" in i.args for i in chain if i.keyword == "RUN")
        assert env_of(chain)["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"
    else:
        assert base.startswith("python:3.11-slim"), base


def test_run_time_packages_are_installed_where_named(image: tuple[str, dict[str, str], list[Instruction]]) -> None:
    name, args, instructions = image
    installs = " ".join(i.args for i in final_stage(instructions) if i.keyword == "RUN" and "apt-get install" in i.args)
    for package in args.get("APT_PACKAGES", "").split():
        assert package in installs, (name, package)
    assert ("espeak-ng" in args.get("APT_PACKAGES", "")) == (args["SERVICE"] == "animator"), name


def test_telemetry_off_and_writable_caches(image: tuple[str, dict[str, str], list[Instruction]]) -> None:
    name, args, instructions = image
    env = env_of(final_stage(instructions))
    assert env["ORT_DISABLE_TELEMETRY"] == "1", name
    assert env["HF_HUB_DISABLE_TELEMETRY"] == "1" and env["DO_NOT_TRACK"] == "1"
    assert env["AVATARFLOW_HTTP_HOST"] == "0.0.0.0" and env["AVATARFLOW_HTTP_PORT"] == "8080"
    assert env["XDG_CACHE_HOME"].startswith("/var/cache/avatarflow")
    assert env["AVATARFLOW_SERVICE_NAME"] == env["AVATARFLOW_IMAGE_SERVICE"] == args["SERVICE"]


def test_healthcheck_probes_healthz_with_python(image: tuple[str, dict[str, str], list[Instruction]]) -> None:
    name, _, instructions = image
    (healthcheck,) = [i.args for i in final_stage(instructions) if i.keyword == "HEALTHCHECK"]
    command = json.loads(healthcheck[healthcheck.index("CMD") + 3 :].strip())
    assert command[:2] == ["python", "-c"], name
    assert "urllib.request" in command[2] and "/healthz" in command[2]
    compile(command[2], "<healthcheck>", "exec")


def test_entrypoint_runs_the_service_the_image_was_built_for(
    image: tuple[str, dict[str, str], list[Instruction]],
) -> None:
    name, args, instructions = image
    (entrypoint,) = [i.args for i in final_stage(instructions) if i.keyword == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["python", "-m", "avatarflow_runtime.entrypoint"], name
    environ = env_of(final_stage(instructions))
    assert image_service({"AVATARFLOW_IMAGE_SERVICE": environ["AVATARFLOW_IMAGE_SERVICE"]}) == args["SERVICE"]


def test_the_entrypoint_refuses_an_image_without_a_known_service() -> None:
    for bad in ({}, {"AVATARFLOW_IMAGE_SERVICE": "billing"}):
        with pytest.raises(SystemExit, match="AVATARFLOW_IMAGE_SERVICE must be one of"):
            image_service(bad)
    assert warm_up("ingest") is False  # nothing to warm; only the matting core has a warm-up


def test_matting_image_warms_the_numba_cache_as_the_runtime_user() -> None:
    runtime = final_stage(render(BUILDS["matting"]))
    env = env_of(runtime)
    assert env["NUMBA_CACHE_DIR"] == "/var/cache/avatarflow/numba"
    warm = [n for n, i in enumerate(runtime) if i.keyword == "RUN" and "--warm-up" in i.args]
    assert warm, "matting must compile its numba kernels (warm_up) at build time"
    assert "find /var/cache/avatarflow/numba" in runtime[warm[0]].args  # and the cache must be there
    users_before = [i.args for i in runtime[: warm[0]] if i.keyword == "USER"]
    assert users_before and users_before[-1].startswith("10001")


def test_cpu_and_gpu_images_run_the_same_onnxruntime() -> None:
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    versions = {p["name"]: p["version"] for p in lock["package"] if p["name"] in ("onnxruntime", "onnxruntime-gpu")}
    assert versions["onnxruntime"] == versions["onnxruntime-gpu"], versions
