"""``avatarctl demo``: the README's run command.

Brings up the whole pipeline locally on embedded infrastructure (Tansu broker, SeaweedFS S3,
SQLite or a given PostgreSQL), runs the five services as separate processes, uploads the sample
images over HTTP as a Space editor, and prints each upload's outcome as the editor sees it, the
events on the broker and the editor page's URL.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

SAMPLES = Path(__file__).resolve().parents[1] / "devstack" / "samples"
TERMINAL = {"ready", "rejected", "failed"}


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    demo = subparsers.add_parser("demo", help="run the whole pipeline locally on the sample images")
    demo.add_argument("images", nargs="*", type=Path, help="images to upload (default: the bundled samples)")
    demo.add_argument("--database-url", default=None, help="default: a SQLite file in the work dir")
    demo.add_argument("--workdir", type=Path, default=None, help="default: a temporary directory")
    demo.add_argument("--exit-when-done", action="store_true", help="stop everything once all uploads ended")
    demo.add_argument("--timeout", type=float, default=600, help="seconds to wait for all uploads")
    demo.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from avatarflow_runtime.auth import mint_token

    from avatarflow.devstack import DevStack
    from avatarflow.devstack.processes import SERVICES, ServiceProcess, pipeline_env, start_all

    images = args.images or sorted(p for p in SAMPLES.iterdir() if p.suffix.lower() in {".jpg", ".png", ".webp"})
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="avatarflow-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"work dir: {workdir}")
    with DevStack(workdir=workdir / "stack", database_url=args.database_url) as stack:
        endpoints = stack.endpoints
        assert endpoints is not None
        secret = endpoints.jwt_secret  # minted for this run: tokens from another run are refused
        print(f"broker {endpoints.kafka_bootstrap} | S3 {endpoints.s3_endpoint} | database {endpoints.database_url}")
        procs = {name: ServiceProcess(name, {}, workdir / f"{name}.log") for name in SERVICES}
        env = pipeline_env(
            endpoints.service_env(),
            ingest_url=procs["ingest"].base_url,
            notifier_url=procs["notifier"].base_url,
            AVATARFLOW_LOG_LEVEL="INFO",
        )
        try:
            start_all(list(procs.values()), env)
            for name, proc in procs.items():
                print(f"  {name:<9} ready at {proc.base_url}")
            uploads = _upload_all(images, procs["ingest"].base_url, secret, mint_token)
            results = _wait_for_outcomes(uploads, procs["notifier"].base_url, args.timeout)
            _print_outcomes(results)
            _print_broker_summary(endpoints.kafka_bootstrap)
            first_space = next(iter(uploads.values()))["space"]
            token = mint_token(secret, subject="demo-editor", space_id=first_space, ttl_s=8 * 3600)
            print(f"\nEditor page:   {procs['notifier'].base_url}/editor/{first_space}#token={token}")
            print(f"End-user view: {procs['notifier'].base_url}/spaces/{first_space}")
            print(f"Service logs:  {workdir}/*.log")
            failed = [r for r in results.values() if r.get("status") not in TERMINAL]
            if args.exit_when_done:
                return 1 if failed else 0
            print("\nPipeline is running. Press Ctrl-C to stop everything.")
            _wait_for_interrupt()
            return 0
        finally:
            for proc in procs.values():
                proc.stop(timeout_s=30)


def _upload_all(images: list[Path], ingest_url: str, secret: str, mint_token) -> dict[str, dict[str, str]]:  # type: ignore[no-untyped-def]
    uploads: dict[str, dict[str, str]] = {}
    print("\nUploading as a Space editor (one space per image):")
    for index, image in enumerate(images, start=1):
        space = f"demo-space-{index}"
        token = mint_token(secret, subject="demo-editor", space_id=space)
        response = httpx.post(
            f"{ingest_url}/v1/spaces/{space}/uploads",
            headers={"authorization": f"Bearer {token}"},
            files={"file": (image.name, image.read_bytes(), "application/octet-stream")},
            timeout=60,
        )
        body = response.json()
        if response.status_code == 202:
            uploads[image.name] = {"space": space, "upload_id": body["upload_id"], "token": token}
            print(f"  {image.name:<32} 202 upload_id={body['upload_id']}")
        else:
            print(f"  {image.name:<32} {response.status_code} {body.get('detail')}")
    return uploads


def _wait_for_outcomes(uploads: dict[str, dict[str, str]], notifier_url: str, timeout_s: float) -> dict[str, dict]:  # type: ignore[type-arg]
    results: dict[str, dict] = {}  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for name, upload in uploads.items():
            response = httpx.get(
                f"{notifier_url}/v1/spaces/{upload['space']}/avatar-status",
                headers={"authorization": f"Bearer {upload['token']}"},
                timeout=10,
            )
            if response.status_code == 200:
                results[name] = response.json()
        if len(results) == len(uploads) and all(r.get("status") in TERMINAL for r in results.values()):
            break
        time.sleep(1)
    return results


def _print_outcomes(results: dict[str, dict]) -> None:  # type: ignore[type-arg]
    print("\nOutcome of each upload, as the editor sees it:")
    for name, status in results.items():
        line = f"  {name:<32} {status.get('status', '?'):<10}"
        prompt = status.get("prompt")
        if prompt:
            line += f" prompt: {prompt['message']}"
        elif status.get("status") == "ready":
            line += " avatar ready (idle loop, visemes, preview clip)"
        print(line)


def _print_broker_summary(bootstrap: str) -> None:
    from avatarflow_contracts import ALL_TOPICS

    from avatarflow.devstack.topics import read_topic

    async def count() -> Counter[str]:
        counts: Counter[str] = Counter()
        for topic in ALL_TOPICS:
            counts[topic] = len(await read_topic(bootstrap, topic, idle_s=0.5, timeout_s=5))
        return counts

    print("\nEvents on the broker:")
    for topic, n in asyncio.run(count()).items():
        print(f"  {topic:<28} {n}")


def _wait_for_interrupt() -> None:
    stop = False

    def handler(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    while not stop:
        time.sleep(0.5)
    print("\nstopping…", file=sys.stderr)
