"""Which faults pause a partition (infrastructure) and which dead-letter a record (data): issue 16 defect 4."""

from __future__ import annotations

import pytest
import sqlalchemy.exc
from aiokafka.errors import KafkaConnectionError
from avatarflow_contracts import MalformedEvent
from avatarflow_runtime.errors import CorruptObject, PermanentError, RecordTooLarge, TransientError
from avatarflow_runtime.messaging import fqcn, is_infrastructure_fault
from botocore.exceptions import EndpointConnectionError


def _wrapped(outer: Exception, inner: Exception) -> Exception:
    try:
        try:
            raise inner
        except Exception as exc:
            raise outer from exc
    except Exception as exc:
        return exc


@pytest.mark.parametrize(
    "error",
    [
        TransientError("S3 503"),
        ConnectionRefusedError(111, "refused"),
        TimeoutError("read timed out"),
        KafkaConnectionError("broker gone"),
        EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
        sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection")),
        sqlalchemy.exc.InterfaceError("SELECT 1", {}, Exception("connection already closed")),
        _wrapped(RuntimeError("write failed"), ConnectionResetError(104, "reset")),
    ],
    ids=lambda e: type(e).__name__,
)
def test_infrastructure_faults_wait_for_the_dependency(error: Exception) -> None:
    assert is_infrastructure_fault(error)


@pytest.mark.parametrize(
    "error",
    [
        PermanentError("object_missing", "gone"),
        CorruptObject("sha256 mismatch"),
        RecordTooLarge("2 MB"),
        MalformedEvent("not JSON"),
        ValueError("cannot decode image"),
        sqlalchemy.exc.IntegrityError("INSERT", {}, Exception("duplicate key")),
        _wrapped(PermanentError("unprocessable_image", "bad"), ConnectionResetError(104, "reset")),
    ],
    ids=lambda e: type(e).__name__,
)
def test_data_faults_are_terminal(error: Exception) -> None:
    assert not is_infrastructure_fault(error)


def test_dead_letter_exception_names_are_fully_qualified() -> None:
    assert fqcn(CorruptObject("x")) == "avatarflow_runtime.errors.CorruptObject"
    assert fqcn(ValueError("x")) == "ValueError"
