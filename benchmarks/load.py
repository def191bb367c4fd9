"""Load test: drive uploads at increasing rates through the whole local pipeline.

All services run as separate processes on the real broker (Tansu), S3 (SeaweedFS) and database.
For each offered rate we upload for ``--step-seconds``, wait for every upload to reach a terminal
event, and report sustained throughput and p50/p95/p99 latency per stage, taken from the events'
own timestamps (every process runs on this machine's clock):

  validate  = face.validated|face.rejected - image.uploaded
  matting   = avatar.matted - face.validated
  animate   = avatar.rendered - avatar.matted
  end-to-end = terminal event - image.uploaded

The knee is the first rate whose sustained throughput falls below 90 % of the offered rate (the
pipeline can no longer keep up). ``--validators 2`` runs two validator processes in one consumer
group to show the scale-out; ``--mix reject`` sends only images the validator rejects, so the
validator is the stage under load.

    .venv/bin/python benchmarks/load.py --rates 1,2,4,8 --step-seconds 20 --mix reject --validators 1
    .venv/bin/python benchmarks/load.py --rates 1,2,4,8 --step-seconds 20 --mix reject --validators 2
    .venv/bin/python benchmarks/load.py --rates 0.1,0.2,0.4 --step-seconds 30 --mix accept
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AVATARFLOW_SHARED_DIR", REPO.parent / "shared"))

from avatarflow_contracts import Topic  # noqa: E402
from avatarflow_runtime.auth import mint_token  # noqa: E402

from avatarflow.devstack import DevStack  # noqa: E402
from avatarflow.devstack.processes import ServiceProcess, pipeline_env, start_all  # noqa: E402
from avatarflow.devstack.topics import read_topic  # noqa: E402

TERMINAL_TOPICS = (Topic.FACE_REJECTED, Topic.AVATAR_RENDERED, Topic.AVATAR_FAILED)


@dataclass
class Step:
    rate: float
    upload_ids: list[str] = field(default_factory=list)
    refused: int = 0
    started: float = 0.0


def pick_images(mix: str) -> list[Path]:
    images = SHARED / "avatar-images"
    if mix == "reject":
        names = [
            "no_face__golden-gate-landscape.jpg",
            "eyes_occluded__man-dark-aviators.jpg",
            "mouth_occluded__nurse-surgical-mask.jpg",
            "multiple_faces__couple-event.jpg",
        ]
    elif mix == "accept":
        names = ["accept_photo__bald-man-white-bg.jpg", "accept_photo__man-suit-plain-bg.jpg"]
    else:
        names = [
            "accept_photo__bald-man-white-bg.jpg",
            "no_face__golden-gate-landscape.jpg",
            "eyes_occluded__man-dark-aviators.jpg",
            "accept_photo__man-suit-plain-bg.jpg",
        ]
    return [images / n for n in names]


async def drive(step: Step, seconds: float, ingest: str, images: list[Path], secret: str) -> None:
    """Open-loop arrivals at a fixed rate (an upload is sent on schedule, not after the last finishes)."""
    payloads = [(p.name, p.read_bytes()) for p in images]
    count = max(1, round(step.rate * seconds))
    async with httpx.AsyncClient(timeout=60) as client:

        async def one(i: int) -> None:
            space = f"load-{uuid.uuid4().hex[:10]}"
            token = mint_token(secret, subject=f"load-editor-{i}", space_id=space)
            name, data = payloads[i % len(payloads)]
            response = await client.post(
                f"{ingest}/v1/spaces/{space}/uploads",
                headers={"authorization": f"Bearer {token}"},
                files={"file": (name, data, "image/jpeg")},
            )
            if response.status_code == 202:
                step.upload_ids.append(response.json()["upload_id"])
            else:
                step.refused += 1

        step.started = time.time()
        tasks = []
        for i in range(count):
            delay = step.started + i / step.rate - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)


async def event_times(bootstrap: str) -> dict[str, dict[str, float]]:
    """upload_id -> {event_type: occurred_at epoch seconds} (first occurrence of each type)."""
    from avatarflow_contracts import decode_any

    times: dict[str, dict[str, float]] = {}
    for topic in (Topic.IMAGE_UPLOADED, Topic.FACE_VALIDATED, *TERMINAL_TOPICS, Topic.AVATAR_MATTED):
        for record in await read_topic(bootstrap, topic.value, idle_s=1.5, timeout_s=120):
            event = decode_any(record.value, topic)
            times.setdefault(str(event.upload_id), {}).setdefault(event.event_type, event.occurred_at.timestamp())
    return times


def terminal_time(t: dict[str, float]) -> float | None:
    ends = [t[k] for k in ("face.rejected", "avatar.rendered", "avatar.failed") if k in t]
    return min(ends) if ends else None


async def wait_terminal(bootstrap: str, upload_ids: list[str], timeout_s: float) -> dict[str, dict[str, float]]:
    deadline = time.monotonic() + timeout_s
    while True:
        times = await event_times(bootstrap)
        done = sum(1 for u in upload_ids if terminal_time(times.get(u, {})) is not None)
        if done == len(upload_ids) or time.monotonic() > deadline:
            return times
        await asyncio.sleep(2)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def summarise(step: Step, times: dict[str, dict[str, float]]) -> dict[str, object]:
    stages: dict[str, list[float]] = {"validate": [], "matting": [], "animate": [], "end_to_end": []}
    ends = []
    for uid in step.upload_ids:
        t = times.get(uid, {})
        up = t.get("image.uploaded")
        end = terminal_time(t)
        if up is None or end is None:
            continue
        ends.append(end)
        first_verdict = min((t[k] for k in ("face.validated", "face.rejected") if k in t), default=None)
        if first_verdict is not None:
            stages["validate"].append(first_verdict - up)
        if "avatar.matted" in t and "face.validated" in t:
            stages["matting"].append(t["avatar.matted"] - t["face.validated"])
        if "avatar.rendered" in t and "avatar.matted" in t:
            stages["animate"].append(t["avatar.rendered"] - t["avatar.matted"])
        stages["end_to_end"].append(end - up)
    span = (max(ends) - step.started) if ends else float("nan")
    return {
        "offered": step.rate,
        "sent": len(step.upload_ids) + step.refused,
        "completed": len(ends),
        "throughput": len(ends) / span if ends else 0.0,
        "stages": {k: (pct(v, 50), pct(v, 95), pct(v, 99), len(v)) for k, v in stages.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="1,2,4,8", help="offered uploads/s, comma-separated")
    parser.add_argument("--step-seconds", type=float, default=20)
    parser.add_argument("--validators", type=int, default=1)
    parser.add_argument("--mix", choices=["reject", "accept", "mixed"], default="reject")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--drain-timeout", type=float, default=300)
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    images = pick_images(args.mix)
    workdir = Path(tempfile.mkdtemp(prefix="avatarflow-load-"))
    print(f"machine: {os.cpu_count()} cores | mix={args.mix} | validators={args.validators} | logs {workdir}")
    with DevStack(workdir=workdir / "stack", database_url=args.database_url, topic_partitions=4) as stack:
        assert stack.endpoints is not None
        secret = stack.endpoints.jwt_secret
        names = ["ingest", *["validator"] * args.validators, "matting", "animator", "notifier"]
        procs = [ServiceProcess(n, {}, workdir / f"{n}-{i}.log") for i, n in enumerate(names)]
        env = pipeline_env(
            stack.endpoints.service_env(),
            ingest_url=procs[0].base_url,
            notifier_url=procs[-1].base_url,
            seed_catalogue=False,
            AVATARFLOW_LOG_LEVEL="WARNING",
            AVATARFLOW_INGEST_RATE_LIMIT_PER_MINUTE="100000",
        )
        try:
            start_all(procs, env)
            ingest = procs[0].base_url
            results = []
            for rate in rates:
                step = Step(rate)
                asyncio.run(drive(step, args.step_seconds, ingest, images, secret))
                times = asyncio.run(wait_terminal(stack.endpoints.kafka_bootstrap, step.upload_ids, args.drain_timeout))
                results.append(summarise(step, times))
                r = results[-1]
                print(
                    f"  offered {rate:>5.2f}/s: sent {r['sent']}, completed {r['completed']}, "
                    f"sustained {r['throughput']:.2f}/s",
                    flush=True,
                )
        finally:
            for p in procs:
                p.stop(timeout_s=30)
    print_report(results)
    return 0


def print_report(results: list[dict[str, object]]) -> None:
    print(
        "\n| offered/s | sent | completed | sustained/s | validate p50/p95/p99 s | matting p50/p95/p99 s "
        "| animate p50/p95/p99 s | end-to-end p50/p95/p99 s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    knee = None
    for r in results:
        cells = []
        for stage in ("validate", "matting", "animate", "end_to_end"):
            p50, p95, p99, n = r["stages"][stage]  # type: ignore[index]
            cells.append("-" if n == 0 else f"{p50:.2f} / {p95:.2f} / {p99:.2f}")
        print(
            f"| {r['offered']:.2f} | {r['sent']} | {r['completed']} | {r['throughput']:.2f} | "
            + " | ".join(cells)
            + " |"
        )
        if knee is None and r["throughput"] < 0.9 * float(r["offered"]):  # type: ignore[arg-type]
            knee = r["offered"]
    peak = max(float(r["throughput"]) for r in results)  # type: ignore[arg-type]
    print(
        f"\npeak sustained throughput: {peak:.2f} uploads/s; knee (sustained < 90% of offered): "
        f"{'none up to the highest rate' if knee is None else f'{knee}/s'}"
    )
    e2e = [r["stages"]["end_to_end"][0] for r in results]  # type: ignore[index]
    if len(e2e) > 1 and not any(map(lambda v: v != v, e2e)):
        print(f"end-to-end p50 growth from lowest to highest rate: x{e2e[-1] / max(e2e[0], 1e-9):.1f}")


if __name__ == "__main__":
    sys.exit(main())
