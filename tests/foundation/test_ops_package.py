"""The operations package (``avatarflow-ops``, ``avatarctl-ops``) installs and runs without the ML stack
(issue 17): its locked dependency closure has none of the services' model libraries, and its commands
run in a process where importing them fails (and is recorded, so even a caught attempt is a finding)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import textwrap
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from avatarflow_contracts import (
    CheckResult,
    DeadLetter,
    FaceRejected,
    ObjectRef,
    ReasonCode,
    Topic,
    dead_letter_topic,
    encode_event,
    retry_topic,
)
from avatarflow_runtime.auth import verify_token
from lock_support import locked_closure

from avatarflow.devstack import StackEndpoints

# What the services need for faces, mattes and renders; an operator's tool needs none of it.
ML_DISTRIBUTIONS = {
    "mediapipe",
    "opencv-python",
    "opencv-python-headless",
    "opencv-contrib-python",
    "onnx",
    "onnxruntime",
    "onnxruntime-gpu",
    "pymatting",
    "scipy",
    "numba",
    "llvmlite",
    "av",
    "numpy",
    "matplotlib",
}
BLOCKED_MODULES = ("mediapipe", "cv2", "onnxruntime", "onnx", "pymatting", "numba", "scipy", "av", "matplotlib")
SECRET = "ops-package-test-secret-0123456789abcdef"


def test_the_locked_closure_of_avatarflow_ops_has_no_ml_package() -> None:
    closure = locked_closure("--no-dev", "--package", "avatarflow-ops")
    assert {"aiokafka", "pydantic", "pyjwt", "boto3"} <= set(closure), sorted(closure)
    assert not ML_DISTRIBUTIONS & set(closure), sorted(ML_DISTRIBUTIONS & set(closure))


@pytest.fixture(scope="module")
def blocked_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path]:
    """Environment whose interpreters cannot import the ML modules (a sitecustomize on PYTHONPATH
    installs a finder that refuses them and appends each attempted name to a file)."""
    hook = tmp_path_factory.mktemp("ml-blocker")
    attempts = hook / "attempts.txt"
    (hook / "sitecustomize.py").write_text(
        textwrap.dedent(
            f"""
            import sys

            BLOCKED = {BLOCKED_MODULES!r}


            class _NoMachineLearning:
                def find_spec(self, name, path=None, target=None):
                    if name.split(".", 1)[0] in BLOCKED:
                        with open({str(attempts)!r}, "a") as log:
                            log.write(name + "\\n")
                        raise ImportError(f"{{name}} is blocked: avatarctl-ops must run without the ML stack")
                    return None


            sys.meta_path.insert(0, _NoMachineLearning())
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVATARFLOW_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(hook), env.get("PYTHONPATH")) if p)
    env["AVATARFLOW_JWT_SECRET"] = SECRET
    return env, attempts


def ops(env: dict[str, str], *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("avatarctl-ops")
    assert script.exists(), f"{script}: the avatarflow-ops console script is not installed"
    return subprocess.run([str(script), *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_the_blocker_really_blocks(blocked_env: tuple[dict[str, str], Path]) -> None:
    env, attempts = blocked_env
    probe = subprocess.run([sys.executable, "-c", "import cv2"], env=env, capture_output=True, text=True, timeout=60)
    assert probe.returncode != 0 and "blocked" in probe.stderr
    assert "cv2" in attempts.read_text().split()
    attempts.unlink()


def test_mint_token_runs_without_the_ml_stack(blocked_env: tuple[dict[str, str], Path]) -> None:
    env, attempts = blocked_env
    result = ops(env, "mint-token", "--space", "s-ops", "--role", "viewer", "--sub", "ops-1")
    assert result.returncode == 0, result.stderr
    principal = verify_token(result.stdout.strip(), SECRET)
    assert (principal.subject, principal.space_id, principal.role) == ("ops-1", "s-ops", "viewer")
    refused = ops({**env, "AVATARFLOW_JWT_SECRET": "short"}, "mint-token", "--space", "s-ops")
    assert refused.returncode == 2 and "mint-token:" in refused.stderr
    assert not attempts.exists(), attempts.read_text()


def test_avatarctl_offers_the_same_operations_commands() -> None:
    from avatarflow_ops.cli import build_parser as ops_parser

    from avatarflow.cli import build_parser as avatarctl_parser

    def commands(parser: argparse.ArgumentParser) -> dict[str, list[tuple[tuple[str, ...], object, object]]]:
        (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        return {
            name: [(tuple(a.option_strings), a.default, a.required) for a in p._actions]
            for name, p in sub.choices.items()
        }

    ours, theirs = commands(ops_parser()), commands(avatarctl_parser())
    assert set(ours) == {"mint-token", "rejections", "replay-dlq"}
    for name, flags in ours.items():
        assert theirs[name] == flags, name


async def _produce(bootstrap: str, topic: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()


@pytest.mark.integration
def test_rejections_and_replay_dry_run_on_the_broker_without_the_ml_stack(
    stack: StackEndpoints, blocked_env: tuple[dict[str, str], Path]
) -> None:
    env, attempts = blocked_env
    env = {**env, **stack.service_env(), "AVATARFLOW_JWT_SECRET": SECRET}
    since = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    original = ObjectRef(
        bucket=stack.bucket, key="originals/ops/x.jpg", size=10, sha256="0" * 64, content_type="image/jpeg"
    )
    rejected = FaceRejected(
        upload_id=uuid.uuid4(),
        space_id="s-ops",
        editor_id="e-ops",
        original=original,
        reasons=[ReasonCode.BLURRY],
        editor_messages=["blurry"],
        checks=[
            CheckResult(name="blur", code=ReasonCode.BLURRY, score=0.1, threshold=0.5, fails_when="<", passed=False)
        ],
    )
    asyncio.run(_produce(stack.kafka_bootstrap, Topic.FACE_REJECTED.value, encode_event(rejected), b"s-ops", []))
    result = ops(env, "rejections", "--since", since, "--json", "--bootstrap", stack.kafka_bootstrap)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["rejected_uploads"] >= 1 and report["by_reason"].get("blurry", 0) >= 1, report

    group = f"test-ops-{uuid.uuid4().hex[:8]}"
    letter = DeadLetter(
        service="ops-test",
        consumer_group=group,
        topic=Topic.IMAGE_UPLOADED.value,
        partition=0,
        offset=7,
        error_type="tests.OpsProbe",
        error="probe",
        attempts=1,
    )
    asyncio.run(_produce(stack.kafka_bootstrap, dead_letter_topic(group), b"{}", b"s-ops", letter.to_headers()))
    result = ops(env, "replay-dlq", "--group", group, "--dry-run", "--bootstrap", stack.kafka_bootstrap)
    assert result.returncode == 0, result.stderr
    assert f"would replay image.uploaded[0]@7 (tests.OpsProbe) -> {retry_topic(group)}" in result.stdout
    assert "1 record(s) selected; 0 already replayed" in result.stdout
    assert not attempts.exists(), attempts.read_text()
