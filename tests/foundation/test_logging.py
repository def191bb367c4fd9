"""Library log lines are real JSON (issue 16): quotes, newlines and tracebacks no longer break them."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = r"""
import logging
from avatarflow_runtime.logging import configure_logging, get_logger

configure_logging("probe")
logging.getLogger("aiokafka").warning('broker said "no"\nsecond line \\ with a backslash %s', "arg")
logging.getLogger("uvicorn.error").error("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXh4eA in a URL")
try:
    raise ValueError('bad "value"')
except ValueError:
    logging.getLogger("faststream").exception("handler crashed")
get_logger("avatarflow.probe").info("ours", detail='quote " and newline \n')
"""


def test_every_log_line_is_one_json_object_with_the_same_fields() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # raises on the old hand-formatted lines
    assert len(records) == 4, lines
    broker, token, crash, ours = records
    assert broker["event"] == 'broker said "no"\nsecond line \\ with a backslash arg'
    assert (broker["logger"], broker["level"], broker["service"]) == ("aiokafka", "warning", "probe")
    assert "eyJ" not in token["event"] and "[redacted-jwt]" in token["event"]
    assert crash["level"] == "error" and 'ValueError: bad "value"' in crash["exception"]
    assert ours["detail"] == 'quote " and newline \n' and ours["service"] == "probe"
    assert all("timestamp" in record for record in records)
