"""The service Dockerfiles follow the image rules (parsed offline; no Docker engine needed)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from deploy_fixtures import REPO, SERVICES

DOCKERFILES = {
    **{service: REPO / "services" / service / "Dockerfile" for service in SERVICES},
    "animator-gpu": REPO / "services" / "animator" / "Dockerfile.gpu",
}


@dataclass(frozen=True)
class Instruction:
    stage: int
    keyword: str
    args: str


def parse(path: Path) -> list[Instruction]:
    """Instructions with line continuations joined and comments dropped; `stage` counts FROMs."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    instructions: list[Instruction] = []
    stage = -1
    for line in logical:
        keyword, _, args = line.partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        instructions.append(Instruction(stage, keyword.upper(), args.strip()))
    return instructions


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def env_of(instructions: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in instructions:
        if instruction.keyword == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", instruction.args)))
    return env


@pytest.fixture(scope="module", params=sorted(DOCKERFILES))
def dockerfile(request: pytest.FixtureRequest) -> tuple[str, list[Instruction]]:
    return request.param, parse(DOCKERFILES[request.param])


def test_dockerignore_keeps_the_context_small() -> None:
    patterns = set((REPO / ".dockerignore").read_text().split())
    assert {"**/.venv", ".git", "var", "tests"} <= patterns


def test_builder_syncs_the_frozen_lock_for_one_package(dockerfile: tuple[str, list[Instruction]]) -> None:
    name, instructions = dockerfile
    service = name.removesuffix("-gpu")
    syncs = [i.args for i in instructions if i.keyword == "RUN" and "uv sync" in i.args]
    assert syncs, name
    for sync in syncs:
        assert "--frozen" in sync and "--no-dev" in sync, sync
        assert f"--package avatarflow-{service}" in sync, sync
        if service == "animator":
            assert ("--extra gpu" in sync) == (name == "animator-gpu"), sync
            assert ("--extra cpu" in sync) == (name == "animator"), sync
    copied = " ".join(i.args for i in instructions if i.keyword == "COPY")
    assert "uv.lock" in copied
    # The runtime stage gets the venv, not the build tools.
    runtime = final_stage(instructions)
    copies = [i.args for i in runtime if i.keyword == "COPY"]
    assert any("--from=builder" in args and "/opt/avatarflow/venv" in args for args in copies)
    assert not any("uv " in i.args for i in runtime if i.keyword == "RUN")


def test_runtime_stage_runs_as_uid_10001(dockerfile: tuple[str, list[Instruction]]) -> None:
    name, instructions = dockerfile
    runtime = final_stage(instructions)
    users = [i.args for i in runtime if i.keyword == "USER"]
    assert users and users[-1].split(":")[0] == "10001", name
    # The last USER comes after every RUN of the final stage... or the image would finish as root.
    last_user = max(n for n, i in enumerate(runtime) if i.keyword == "USER")
    entrypoint = max(n for n, i in enumerate(runtime) if i.keyword == "ENTRYPOINT")
    assert last_user < entrypoint


def test_runtime_base_image(dockerfile: tuple[str, list[Instruction]]) -> None:
    name, instructions = dockerfile
    args = dict(i.args.split("=", 1) for i in instructions if i.keyword == "ARG" and "=" in i.args)
    bases = [i.args for i in instructions if i.keyword == "FROM"]
    if name == "animator-gpu":
        assert re.match(r"nvidia/cuda:12\.[0-9.]+-cudnn-runtime-ubuntu(22|24)\.04$", args["CUDA_IMAGE"])
        assert any("python3.11" in i.args for i in instructions if i.keyword == "RUN")
    else:
        assert args["PYTHON_IMAGE"].startswith("python:3.11-slim")
        assert bases[-1].startswith("${PYTHON_IMAGE}")


def test_telemetry_off_and_writable_caches(dockerfile: tuple[str, list[Instruction]]) -> None:
    name, instructions = dockerfile
    env = env_of(final_stage(instructions))
    assert env["ORT_DISABLE_TELEMETRY"] == "1", name
    assert env["HF_HUB_DISABLE_TELEMETRY"] == "1" and env["DO_NOT_TRACK"] == "1"
    assert env["AVATARFLOW_HTTP_HOST"] == "0.0.0.0" and env["AVATARFLOW_HTTP_PORT"] == "8080"
    assert env["XDG_CACHE_HOME"].startswith("/var/cache/avatarflow")


def test_healthcheck_probes_healthz_with_python(dockerfile: tuple[str, list[Instruction]]) -> None:
    name, instructions = dockerfile
    (healthcheck,) = [i.args for i in final_stage(instructions) if i.keyword == "HEALTHCHECK"]
    command = json.loads(healthcheck[healthcheck.index("CMD") + 3 :].strip())
    assert command[:2] == ["python", "-c"], name
    assert "urllib.request" in command[2] and "/healthz" in command[2]
    compile(command[2], "<healthcheck>", "exec")


def test_entrypoint_runs_the_service_module(dockerfile: tuple[str, list[Instruction]]) -> None:
    name, instructions = dockerfile
    (entrypoint,) = [i.args for i in final_stage(instructions) if i.keyword == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["python", "-m", f"avatarflow_{name.removesuffix('-gpu')}"]


def test_matting_image_warms_the_numba_cache_as_the_runtime_user() -> None:
    runtime = final_stage(parse(DOCKERFILES["matting"]))
    env = env_of(runtime)
    assert env["NUMBA_CACHE_DIR"] == "/var/cache/avatarflow/numba"
    warm = [n for n, i in enumerate(runtime) if i.keyword == "RUN" and "warm_up()" in i.args]
    assert warm, "matting must compile its numba kernels (warm_up) at build time"
    users_before = [i.args for i in runtime[: warm[0]] if i.keyword == "USER"]
    assert users_before and users_before[-1].startswith("10001")
