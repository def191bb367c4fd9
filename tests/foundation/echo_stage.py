"""A minimal stage built on the real template, run as a subprocess by test_consumer_template.py.

It consumes image.uploaded and answers each upload with one avatar.failed event (error_code
"echo"), so the tests can watch the template's at-least-once, idempotency and DLQ behaviour.
With ECHO_CRASH_ONCE_FILE and ECHO_CRASH_ON (an upload id) set, the output for that upload's record
is published and then the process dies with os._exit before the offset is committed, as a kill -9
would. (The topic is shared by the whole test session, so the crash must target the test's record.)
With ECHO_FAIL_ON (an upload id) the handler fails for good on that upload and the stage's
``on_failure`` raises too: the failure path itself fails (issue 16, defect 2). With ECHO_FAIL_WHILE_FILE
as well, it fails only while that file exists (deleting it is "deploying the fix").
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from avatarflow_contracts import AvatarFailed, Envelope, ImageUploaded, Topic
from avatarflow_runtime import messaging
from avatarflow_runtime.errors import PermanentError
from avatarflow_runtime.logging import configure_logging
from avatarflow_runtime.messaging import EventBus, StageConsumer
from avatarflow_runtime.service import make_broker
from avatarflow_runtime.settings import ServiceSettings

crash_file = os.environ.get("ECHO_CRASH_ONCE_FILE")
crash_on = os.environ.get("ECHO_CRASH_ON", "").encode()
fail_on = os.environ.get("ECHO_FAIL_ON", "")
fail_while = os.environ.get("ECHO_FAIL_WHILE_FILE")
original_publish_then_ack = messaging.publish_then_ack


async def publish_then_maybe_crash(message, bus, outputs):  # type: ignore[no-untyped-def]
    value = message.raw_message.value or b""
    if crash_file and crash_on and crash_on in value and not Path(crash_file).exists():
        for output in outputs:
            await bus.publish(output)  # the output reached the broker...
        Path(crash_file).write_text("crashed")
        os._exit(17)  # ...but the offset was never committed
    await original_publish_then_ack(message, bus, outputs)


messaging.publish_then_ack = publish_then_maybe_crash  # type: ignore[assignment]


def broken_on_failure(event: ImageUploaded, error: BaseException, attempts: int) -> Envelope | None:
    raise RuntimeError(f"on_failure broke on {event.upload_id}")


async def echo(event: ImageUploaded) -> list[Envelope]:
    broken = fail_while is None or Path(fail_while).exists()
    if fail_on and str(event.upload_id) == fail_on and broken:
        raise PermanentError("echo_refused", "this upload always fails")
    return [
        event.follow_up(
            AvatarFailed,
            stage="validator",
            error_code="echo",
            error=f"echo {os.environ['ECHO_GROUP']}",  # which group processed it (replay test)
            editor_message="echo",
            retry_advice="retry_upload",
            attempts=1,
        )
    ]


async def main() -> None:
    settings = ServiceSettings(
        service_name="echo",
        kafka_session_timeout_ms=6000,
        kafka_heartbeat_interval_ms=1000,
        kafka_max_poll_interval_ms=20000,
    )
    configure_logging("echo")
    broker = make_broker(settings)
    bus = EventBus(broker, settings)
    bus.declare(Topic.AVATAR_FAILED, AvatarFailed)
    consumer = StageConsumer(
        broker, bus, settings, os.environ["ECHO_GROUP"], on_failure=broken_on_failure if fail_on else None
    )
    consumer.subscribe(Topic.IMAGE_UPLOADED, echo)
    await broker.start()
    Path(os.environ["ECHO_READY_FILE"]).write_text("ready")
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await broker.stop()


if __name__ == "__main__":
    asyncio.run(main())
