"""PipelineHarness: the whole pipeline on durable local infrastructure, with fault hooks and invariants.

Used by the reliability tests (tests/reliability/) and by load benchmarks. It starts a DevStack whose
Tansu broker stores its log on SeaweedFS (``broker_storage="s3"``: a broker restart keeps every record),
the five services as separate OS processes, and offers:

* uploads over HTTP (retrying what a real client retries: 429/503 and connection errors) and
  directly produced ``image.uploaded`` events (the platform flow: object put in S3 first);
* :meth:`PipelineHarness.wait_terminal`, reading the notifier's own database (exact, no API cache);
* :meth:`PipelineHarness.check_invariants`: terminal status per upload, output objects present and
  intact, no conflicting terminal events, consumer-group lag back to zero.

Tansu's end offsets are unreliable, so the end of every partition is found by reading it from
offset 0 (:func:`partition_ends`), never from ``end_offsets``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .launcher import DevStack, StackEndpoints
from .processes import SERVICES, ServiceProcess, pipeline_env, start_all
from .topics import Record, read_topic

TERMINAL_STATUSES = frozenset({"ready", "rejected", "failed"})
TERMINAL_EVENT_STATUS = {"avatar.rendered": "ready", "face.rejected": "rejected", "avatar.failed": "failed"}
EVENT_TOPICS = (
    "image.uploaded",
    "face.validated",
    "face.rejected",
    "avatar.matted",
    "avatar.rendered",
    "avatar.failed",
)
# Consumer group -> the topics it consumes (docs/architecture.md).
GROUP_TOPICS: dict[str, tuple[str, ...]] = {
    "avatarflow-validator": ("image.uploaded",),
    "avatarflow-matting": ("face.validated",),
    "avatarflow-animator": ("avatar.matted",),
    "avatarflow-notifier": EVENT_TOPICS,
}
# Each group's own dead-letter topic (issue 16: replay re-runs exactly the group that failed).
DEAD_LETTER_TOPICS: dict[str, str] = {group: f"{group}.dlq" for group in GROUP_TOPICS}
# Object references carried by events whose outputs we check (invariant b).
OUTPUT_REFS = {
    "avatar.matted": ("original", "cutout", "preview_on_white", "preview_on_dark"),
    "avatar.rendered": ("manifest", "idle_loop", "viseme_atlas", "preview_clip", "poster"),
}

DEFAULT_NUMBA_CACHE = Path(__file__).resolve().parents[3] / "var" / "numba-cache"

# Rebalances on Tansu wait for the dead member's session: keep it short so a kill -9 recovers fast.
FAST_REBALANCE_ENV = {
    "AVATARFLOW_KAFKA_SESSION_TIMEOUT_MS": "6000",
    "AVATARFLOW_KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
    "AVATARFLOW_KAFKA_MAX_POLL_INTERVAL_MS": "60000",
}


@dataclass(frozen=True)
class Upload:
    upload_id: str
    space_id: str
    editor_id: str
    token: str
    source_name: str


@dataclass
class InvariantReport:
    uploads: int = 0
    terminal: dict[str, str] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    objects_checked: int = 0
    duplicate_terminal_events: int = 0  # same event_id delivered more than once (allowed)
    conflicting_terminal_events: int = 0  # different terminal events for one upload (not allowed)
    lag: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations


def images_from(directory: Path, accept: int, reject: int) -> list[Path]:
    """The smallest ``accept`` images expected to be accepted and ``reject`` expected to be rejected,
    interleaved so both kinds are in flight together. The expectation comes from the directory's
    ``labels.csv`` (``file,expected,...`` as in shared/avatar-images), else from an ``accept_`` prefix."""
    import csv

    labels_path = directory / "labels.csv"
    labels: dict[str, str] = {}
    if labels_path.exists():
        with labels_path.open(newline="") as handle:
            labels = {row["file"]: row["expected"] for row in csv.DictReader(handle)}
    files = sorted(
        (p for p in directory.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp", ".heic"}),
        key=lambda p: (p.stat().st_size, p.name),
    )

    def accepted(p: Path) -> bool:
        return labels.get(p.name, "accept" if p.name.startswith("accept_") else "reject") == "accept"

    good = [p for p in files if accepted(p)][:accept]
    bad = [p for p in files if not accepted(p)][:reject]
    mixed: list[Path] = []
    for i in range(max(len(good), len(bad))):
        mixed += good[i : i + 1] + bad[i : i + 1]
    return mixed


def sync_database_url(url: str) -> str:
    """The notifier's async URL as a synchronous SQLAlchemy URL on the same database."""
    return url.replace("sqlite+aiosqlite://", "sqlite://").replace("postgresql+asyncpg://", "postgresql+psycopg://")


def partition_ends(records: list[Record]) -> dict[tuple[str, int], int]:
    """(topic, partition) -> next offset after the last record read from offset 0."""
    ends: dict[tuple[str, int], int] = {}
    for r in records:
        key = (r.topic, r.partition)
        ends[key] = max(ends.get(key, 0), r.offset + 1)
    return ends


class PipelineHarness:
    """Durable DevStack + the five services as processes. Use as a context manager."""

    def __init__(
        self,
        workdir: Path,
        database_url: str,
        *,
        extra_env: dict[str, str] | None = None,
        services: tuple[str, ...] = SERVICES,
        broker_storage: str = "s3",
        topic_partitions: int = 4,
    ) -> None:
        self.workdir = workdir
        self.database_url = database_url
        self.extra_env = dict(extra_env or {})
        self.services = services
        self.stack = DevStack(
            workdir=workdir / "stack",
            broker_storage=broker_storage,  # type: ignore[arg-type]
            database_url=database_url,
            topic_partitions=topic_partitions,
        )
        self.procs: dict[str, ServiceProcess] = {}
        self._engine: Any = None
        self._s3: Any = None

    # ---- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> PipelineHarness:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoints(self) -> StackEndpoints:
        assert self.stack.endpoints is not None, "harness not started"
        return self.stack.endpoints

    @property
    def secret(self) -> str:
        """The JWT key this run's services verify with (minted per stack)."""
        return self.endpoints.jwt_secret

    def service_env(self) -> dict[str, str]:
        overrides = {
            "AVATARFLOW_DATABASE_URL": self.database_url,
            "AVATARFLOW_LOG_LEVEL": "INFO",
            "AVATARFLOW_INGEST_RATE_LIMIT_PER_MINUTE": "1000",
            # numba (pymatting) needs a writable cache; a warm one makes a restarted matting worker
            # ready in seconds instead of ~40 s (docs/matting.md).
            "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(DEFAULT_NUMBA_CACHE)),
            **FAST_REBALANCE_ENV,
            **self.extra_env,
        }
        if "notifier" in self.procs and "ingest" in self.procs:
            return pipeline_env(
                self.endpoints.service_env(),
                ingest_url=self.procs["ingest"].base_url,
                notifier_url=self.procs["notifier"].base_url,
                seed_catalogue=False,
                **overrides,
            )
        return {**self.endpoints.service_env(), "AVATARFLOW_NOTIFIER_MIGRATE_ON_START": "true", **overrides}

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self.stack.start()
            self.procs = {n: ServiceProcess(n, {}, self.workdir / f"{n}.log") for n in self.services}
            start_all(list(self.procs.values()), self.service_env())
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(Exception):
                proc.stop(timeout_s=20)
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        self.stack.stop()

    # ---- fault hooks ----------------------------------------------------------------------
    def kill_service(self, name: str) -> None:
        self.procs[name].kill()

    def restart_service(self, name: str, timeout_s: float = 300) -> None:
        """SIGKILL the service, then start a fresh process once the killed one's group members expired.

        The wait is for Tansu: when a replacement joins while the killed members' sessions are still
        open, Tansu may hand partitions to the dead members and, seen here, not rebalance when their
        sessions expire (the live members sat without partitions for 5 minutes). Apache Kafka
        rebalances on expiry, so this accommodates the test broker, not the services.
        """
        proc = self.procs[name]
        proc.kill()
        time.sleep(int(FAST_REBALANCE_ENV["AVATARFLOW_KAFKA_SESSION_TIMEOUT_MS"]) / 1000 + 1.0)
        proc.start(wait_ready=True, timeout_s=timeout_s)

    def all_alive_and_ready(self) -> dict[str, bool]:
        result = {}
        for name, proc in self.procs.items():
            alive = proc.popen is not None and proc.popen.poll() is None
            try:
                ready = httpx.get(f"{proc.base_url}/readyz", timeout=5).status_code == 200
            except httpx.HTTPError:
                ready = False
            result[name] = alive and ready
        return result

    def logs(self) -> dict[str, str]:
        return {n: p.log_path.read_text(errors="replace") for n, p in self.procs.items()}

    def log_tails(self, chars: int = 1500) -> str:
        return "\n".join(f"--- {n}\n{p.log_tail(chars)}" for n, p in self.procs.items())

    # ---- clients --------------------------------------------------------------------------
    @property
    def s3(self) -> Any:
        if self._s3 is None:
            import boto3
            from botocore.config import Config

            self._s3 = boto3.client(
                "s3",
                endpoint_url=self.endpoints.s3_endpoint,
                aws_access_key_id=self.endpoints.s3_access_key,
                aws_secret_access_key=self.endpoints.s3_secret_key,
                region_name="us-east-1",
                config=Config(connect_timeout=3, read_timeout=15, retries={"max_attempts": 3}),
            )
        return self._s3

    @property
    def db(self) -> Any:
        if self._engine is None:
            import sqlalchemy as sa

            self._engine = sa.create_engine(sync_database_url(self.database_url), pool_pre_ping=True)
        return self._engine

    def token(self, space_id: str, editor_id: str = "reliability-editor", **kw: Any) -> str:
        from avatarflow_runtime.auth import mint_token

        return mint_token(self.secret, subject=editor_id, space_id=space_id, **kw)

    # ---- uploads --------------------------------------------------------------------------
    def post_upload(
        self,
        space_id: str,
        data: bytes,
        filename: str,
        token: str,
        content_type: str = "application/octet-stream",
    ) -> httpx.Response:
        return httpx.post(
            f"{self.procs['ingest'].base_url}/v1/spaces/{space_id}/uploads",
            headers={"authorization": f"Bearer {token}"},
            files={"file": (filename, data, content_type)},
            timeout=60,
        )

    def upload(
        self, image: Path, space_id: str, editor_id: str = "reliability-editor", timeout_s: float = 120
    ) -> Upload:
        """Upload over HTTP as a client would: retry 429/503 and connection errors until accepted."""
        token = self.token(space_id, editor_id)
        data = image.read_bytes()
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            try:
                response = self.post_upload(space_id, data, image.name, token)
            except httpx.HTTPError as exc:
                last = type(exc).__name__
                time.sleep(0.5)
                continue
            if response.status_code == 202:
                return Upload(str(response.json()["upload_id"]), space_id, editor_id, token, image.name)
            if response.status_code not in (429, 503):
                raise AssertionError(f"upload of {image.name} answered {response.status_code}: {response.text}")
            last = f"{response.status_code} {response.text[:200]}"
            time.sleep(float(response.headers.get("retry-after", "1")) if response.status_code == 429 else 1)
        raise TimeoutError(f"upload of {image.name} not accepted within {timeout_s}s: {last}")

    def upload_many(
        self, images: list[Path], count: int, *, prefix: str = "rel", spaces: int | None = None
    ) -> list[Upload]:
        """``count`` uploads cycling through ``images``, each by its own editor; one space per upload
        unless ``spaces`` is given."""
        run = uuid.uuid4().hex[:6]
        uploads = []
        for i in range(count):
            space = f"{prefix}-{run}-{i if spaces is None else i % spaces}"
            # One editor per upload: the per-editor rate limit is not what these runs measure.
            uploads.append(self.upload(images[i % len(images)], space, f"{prefix}-{run}-editor-{i}"))
        return uploads

    def produce_uploaded(
        self,
        data: bytes,
        content_type: str,
        space_id: str,
        editor_id: str = "platform-editor",
        name: str = "platform",
    ) -> Upload:
        """The platform flow: put the object in S3 (with its sha256), then produce image.uploaded."""
        from avatarflow_contracts import ImageUploaded, ObjectRef, encode_event
        from avatarflow_runtime.keys import original_key

        upload_id = uuid.uuid4()
        key = original_key(upload_id, content_type)
        digest = hashlib.sha256(data).hexdigest()
        self.s3.put_object(
            Bucket=self.endpoints.bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
            Metadata={"sha256": digest},
        )
        ref = ObjectRef(bucket=self.endpoints.bucket, key=key, size=len(data), sha256=digest, content_type=content_type)
        event = ImageUploaded(upload_id=upload_id, space_id=space_id, editor_id=editor_id, original=ref)
        self.produce_raw("image.uploaded", encode_event(event), key=space_id.encode())
        return Upload(str(upload_id), space_id, editor_id, self.token(space_id, editor_id), name)

    def produce_raw(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        self.produce_many([(topic, key, value, headers or [])])

    def produce_many(self, records: list[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]]) -> None:
        asyncio.run(_produce(self.endpoints.kafka_bootstrap, records))

    # ---- reading state --------------------------------------------------------------------
    def db_rows(self, upload_ids: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """The notifier's per-upload rows (upload_id, space_id, status, stage, terminal_event_type, status_at)."""
        import sqlalchemy as sa

        query = "SELECT upload_id, space_id, status, stage, terminal_event_type, status_at FROM notifier_uploads"
        with self.db.connect() as conn:
            rows = conn.execute(sa.text(query)).mappings().all()
        wanted = set(upload_ids) if upload_ids is not None else None
        return {r["upload_id"]: dict(r) for r in rows if wanted is None or r["upload_id"] in wanted}

    def wait_terminal(self, upload_ids: list[str], timeout_s: float = 300) -> dict[str, str]:
        """Poll the notifier's database until every upload is terminal; returns upload_id -> status."""
        deadline = time.monotonic() + timeout_s
        statuses: dict[str, str] = {}
        while True:
            try:
                rows = self.db_rows(upload_ids)
                statuses = {u: str(rows[u]["status"]) for u in upload_ids if u in rows}
            except Exception:  # the database connection may be under fault injection
                pass
            if len(statuses) == len(upload_ids) and all(s in TERMINAL_STATUSES for s in statuses.values()):
                return statuses
            if time.monotonic() > deadline:
                missing = {
                    u: statuses.get(u, "<no row>") for u in upload_ids if statuses.get(u) not in TERMINAL_STATUSES
                }
                raise TimeoutError(f"not terminal after {timeout_s}s: {missing}\n{self.log_tails()}")
            time.sleep(0.5)

    def read_all(self, topics: tuple[str, ...] = EVENT_TOPICS, idle_s: float = 1.5) -> dict[str, list[Record]]:
        async def read() -> dict[str, list[Record]]:
            out = {}
            for topic in topics:
                out[topic] = await read_topic(self.endpoints.kafka_bootstrap, topic, idle_s=idle_s, timeout_s=60)
            return out

        return asyncio.run(read())

    def consumer_lag(self, records: dict[str, list[Record]] | None = None) -> dict[str, int]:
        """Group -> total lag: (end found by reading from 0) - committed offset, over its partitions."""
        records = records if records is not None else self.read_all()
        ends = partition_ends([r for rs in records.values() for r in rs])
        wanted = {group: [tp for tp in ends if tp[0] in topics] for group, topics in GROUP_TOPICS.items()}
        committed = asyncio.run(_committed_offsets(self.endpoints.kafka_bootstrap, wanted))
        lag: dict[str, int] = {}
        for group, topics in GROUP_TOPICS.items():
            total = 0
            for (topic, partition), end in ends.items():
                if topic in topics:
                    total += max(0, end - committed[group].get((topic, partition), 0))
            lag[group] = total
        return lag

    def wait_lag_zero(self, timeout_s: float = 120) -> dict[str, int]:
        deadline = time.monotonic() + timeout_s
        while True:
            lag = self.consumer_lag()
            if not any(lag.values()) or time.monotonic() > deadline:
                return lag
            time.sleep(1)

    # ---- invariants -----------------------------------------------------------------------
    def check_invariants(self, upload_ids: list[str], *, check_lag: bool = True) -> InvariantReport:
        from avatarflow_contracts import PoisonEvent, decode_any

        def decoded(topic: str) -> list[Any]:
            events = []
            for record in records[topic]:
                try:
                    events.append(decode_any(record.value, topic))
                except PoisonEvent:
                    continue  # dead-lettered by the consumers; not an upload's event
            return events

        report = InvariantReport(uploads=len(upload_ids))
        wanted = set(upload_ids)
        records = self.read_all()

        # (a) every upload is in exactly one terminal status in the notifier's database.
        rows = self.db_rows(upload_ids)
        for upload_id in upload_ids:
            row = rows.get(upload_id)
            if row is None or row["status"] not in TERMINAL_STATUSES:
                report.violations.append(f"{upload_id}: not terminal in DB ({row and row['status']})")
            else:
                report.terminal[upload_id] = str(row["status"])

        # (b) every output object referenced by avatar.matted / avatar.rendered exists and is intact.
        for topic, fields in OUTPUT_REFS.items():
            for event in decoded(topic):
                if str(event.upload_id) not in wanted:
                    continue
                for name in fields:
                    ref = getattr(event, name)
                    try:
                        body = self.s3.get_object(Bucket=ref.bucket, Key=ref.key)["Body"].read()
                    except Exception as exc:
                        report.violations.append(f"{event.upload_id}: {topic}.{name} missing ({type(exc).__name__})")
                        continue
                    report.objects_checked += 1
                    if hashlib.sha256(body).hexdigest() != ref.sha256 or len(body) != ref.size:
                        report.violations.append(f"{event.upload_id}: {topic}.{name} corrupt ({ref.key})")

        # (c) terminal events: redeliveries only with the same event_id; DB equals the first outcome.
        terminal_events: dict[str, list[tuple[Any, str, str]]] = defaultdict(list)
        for topic in TERMINAL_EVENT_STATUS:
            for event in decoded(topic):
                if str(event.upload_id) in wanted:
                    terminal_events[str(event.upload_id)].append((event.occurred_at, str(event.event_id), topic))
        for upload_id in upload_ids:
            events = sorted(terminal_events.get(upload_id, []))
            if not events:
                report.violations.append(f"{upload_id}: no terminal event on the broker")
                continue
            distinct = {event_id for _, event_id, _ in events}
            report.duplicate_terminal_events += len(events) - len(distinct)
            if len(distinct) > 1:
                report.conflicting_terminal_events += len(distinct) - 1
                report.violations.append(f"{upload_id}: {len(distinct)} different terminal events {events}")
            first_status = TERMINAL_EVENT_STATUS[events[0][2]]
            if upload_id in report.terminal and report.terminal[upload_id] != first_status:
                report.violations.append(
                    f"{upload_id}: DB {report.terminal[upload_id]} != first terminal event {first_status}"
                )

        # (d) every consumer group has caught up (lag from committed offsets vs records read).
        if check_lag:
            deadline = time.monotonic() + 60
            lag = self.consumer_lag(records)
            while any(lag.values()) and time.monotonic() < deadline:
                time.sleep(1)
                lag = self.consumer_lag()
            report.lag = lag
            for group, value in lag.items():
                if value:
                    report.violations.append(f"group {group} lag {value}")
        return report

    def assert_invariants(self, upload_ids: list[str], *, check_lag: bool = True) -> InvariantReport:
        report = self.check_invariants(upload_ids, check_lag=check_lag)
        assert report.ok, "invariants violated:\n" + "\n".join(report.violations) + "\n" + self.log_tails()
        return report


async def _produce(bootstrap: str, records: list[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, max_request_size=4 * 1024 * 1024
    )
    await producer.start()
    try:
        for topic, key, value, headers in records:
            await producer.send_and_wait(topic, value, key=key, headers=headers or None)
    finally:
        await producer.stop()


async def _committed_offsets(
    bootstrap: str, group_partitions: dict[str, list[tuple[str, int]]]
) -> dict[str, dict[tuple[str, int], int]]:
    """Committed offsets per group for the given partitions (OffsetFetch names them: Tansu's
    answer to the "all topics" form does not parse)."""
    from aiokafka import TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        result: dict[str, dict[tuple[str, int], int]] = {}
        for group, partitions in group_partitions.items():
            tps = [TopicPartition(topic, partition) for topic, partition in partitions]
            offsets = await admin.list_consumer_group_offsets(group, partitions=tps) if tps else {}
            result[group] = {(tp.topic, tp.partition): max(0, meta.offset) for tp, meta in offsets.items()}
        return result
    finally:
        await admin.close()
