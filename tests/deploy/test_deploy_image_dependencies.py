"""What each image installs, from the lock (issue 17): evaluation-only libraries stay out of the
production images, the workspace (dev, CI) still has them, and the CPU and GPU animator images run the
same onnxruntime release. Each image's closure is ``uv export`` of the Dockerfile's own ``uv sync``
arguments (package and extra) as docker-compose.yml renders them."""

from __future__ import annotations

import re
import shlex
import tomllib

import pytest
from deploy_fixtures import REPO
from lock_support import locked_closure
from test_deploy_dockerfiles import BUILDS, render

# pymatting (and scipy, which only it and the evaluation use) serve `avatarctl matting-eval` only:
# the matting service's optional `eval` extra.
EVAL_ONLY = {"pymatting", "scipy"}


def image_sync_arguments(name: str) -> list[str]:
    """The final ``uv sync`` of the image's builder stage, as export arguments (package, extras)."""
    syncs = [i.args for i in render(BUILDS[name]) if i.keyword == "RUN" and "uv sync" in i.args]
    words = shlex.split(syncs[-1].split("uv sync", 1)[1])
    args: list[str] = []
    for flag, value in zip(words, [*words[1:], ""], strict=True):
        if flag in ("--package", "--extra"):
            args += [flag, value]
    assert "--no-dev" in words and "--package" in args, words
    return ["--no-dev", *args]


@pytest.mark.parametrize("name", sorted(BUILDS))
def test_production_images_leave_the_evaluation_libraries_out(name: str) -> None:
    closure = locked_closure(*image_sync_arguments(name))
    assert not EVAL_ONLY & set(closure), (name, sorted(EVAL_ONLY & set(closure)))


def test_the_workspace_still_installs_the_evaluation_extra() -> None:
    """dev and CI run `uv sync --all-packages`: the root project asks for `avatarflow-matting[eval]`."""
    root = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "avatarflow-matting[eval]" in root["project"]["dependencies"]
    matting = tomllib.loads((REPO / "services/matting/pyproject.toml").read_text())["project"]
    assert {re.split(r"[<>=!~ ]", d)[0] for d in matting["optional-dependencies"]["eval"]} == EVAL_ONLY
    assert set(locked_closure("--all-packages")) >= EVAL_ONLY


def test_no_service_declares_matplotlib() -> None:
    """No production code imports matplotlib: only mediapipe requires it (so it is still in the validator
    and matting images, through mediapipe alone)."""
    for manifest in sorted(REPO.glob("services/*/pyproject.toml")):
        project = tomllib.loads(manifest.read_text())["project"]
        extras = project.get("optional-dependencies", {}).values()
        declared = [*project["dependencies"], *(d for extra in extras for d in extra)]
        assert not [d for d in declared if d.startswith("matplotlib")], manifest
    for source in sorted(REPO.glob("services/*/src/**/*.py")):
        assert not re.search(r"^\s*(import|from) matplotlib", source.read_text(), flags=re.M), source


def test_cpu_and_gpu_animator_images_resolve_the_same_pinned_onnxruntime() -> None:
    extras = tomllib.loads((REPO / "services/animator/pyproject.toml").read_text())["project"]["optional-dependencies"]
    (cpu,) = extras["cpu"]
    (gpu,) = extras["gpu"]
    cpu_name, _, cpu_pin = cpu.partition("==")
    gpu_name, _, gpu_pin = gpu.partition("==")
    assert (cpu_name, gpu_name) == ("onnxruntime", "onnxruntime-gpu"), extras
    assert cpu_pin and cpu_pin == gpu_pin, "pin both extras to one exact release"
    cpu_image = locked_closure(*image_sync_arguments("animator"))
    gpu_image = locked_closure(*image_sync_arguments("animator-gpu"))
    assert cpu_image["onnxruntime"] == gpu_image["onnxruntime-gpu"] == cpu_pin
    assert "onnxruntime-gpu" not in cpu_image and "onnxruntime" not in gpu_image


def test_builder_copies_every_workspace_manifest_before_the_dependency_layer() -> None:
    """uv reads every member's manifest to use the lock: a member missing from the first COPY layer
    (a new library, such as libs/ops) would make the dependency-only sync see another workspace."""
    copied = " ".join(i.args for i in render(BUILDS["ingest"]) if i.keyword == "COPY")
    for manifest in sorted([*REPO.glob("libs/*/pyproject.toml"), *REPO.glob("services/*/pyproject.toml")]):
        assert str(manifest.relative_to(REPO)) in copied, manifest
