"""S3 adapter: the only place that talks to object storage.

Runs unchanged against AWS S3, MinIO and SeaweedFS. Reads verify the sha256 recorded in the event,
so a corrupt or swapped object is detected instead of processed.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import Any

import boto3
from avatarflow_contracts import ObjectRef
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, EndpointConnectionError

from .errors import CorruptObject, PermanentError, TransientError
from .settings import ServiceSettings

_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class ObjectStore:
    client: Any
    bucket: str

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> ObjectStore:
        client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id.get_secret_value() if settings.s3_access_key_id else None,
            aws_secret_access_key=(
                settings.s3_secret_access_key.get_secret_value() if settings.s3_secret_access_key else None
            ),
            config=Config(
                connect_timeout=settings.s3_connect_timeout_s,
                read_timeout=settings.s3_read_timeout_s,
                # Our own retry loop (with backoff and metrics) sits above this one.
                retries={"max_attempts": 2, "mode": "standard"},
                s3={"addressing_style": "path"},
                signature_version="s3v4",
            ),
        )
        return cls(client=client, bucket=settings.s3_bucket)

    # ---- sync API (run in a thread by the async wrappers) -------------------------------------
    def put_bytes_sync(self, key: str, data: bytes, content_type: str, *, if_absent: bool = False) -> ObjectRef:
        """Store ``data`` at ``key``. With ``if_absent`` the write is conditional (``If-None-Match: *``,
        AWS S3, MinIO and SeaweedFS honour it): ``PermanentError("object_exists")`` when the key is taken,
        so two concurrent writers cannot both win."""
        digest = sha256_hex(data)
        condition = {"IfNoneMatch": "*"} if if_absent else {}
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                Metadata={"sha256": digest},
                **condition,
            )
        except (BotoCoreError, ClientError) as exc:
            raise _classify(exc, f"put {key}") from exc
        return ObjectRef(bucket=self.bucket, key=key, size=len(data), sha256=digest, content_type=content_type)

    def get_bytes_sync(self, ref: ObjectRef, *, max_bytes: int | None = None) -> bytes:
        """The object ``ref`` names, checked against its recorded size and sha256."""
        data = self._read_sync(ref.bucket, ref.key, max_bytes if max_bytes is not None else ref.size, max_bytes)
        if len(data) != ref.size or sha256_hex(data) != ref.sha256:
            raise CorruptObject(f"object {ref.key} does not match its recorded size/sha256")
        return data

    def read_untrusted_sync(self, key: str, *, max_bytes: int) -> bytes:
        """An object nobody has recorded yet (a client's direct upload): at most ``max_bytes``.

        ``PermanentError("object_too_large")`` when S3 says it is longer; the body read stops one
        byte past the limit, so a lying ``Content-Length`` still cannot make us read more (the
        caller's size check sees the extra byte).
        """
        return self._read_sync(self.bucket, key, max_bytes, max_bytes)

    def _read_sync(self, bucket: str, key: str, limit: int, max_bytes: int | None) -> bytes:
        try:
            response = self.client.get_object(Bucket=bucket, Key=key)
            length = int(response.get("ContentLength", 0))
            if max_bytes is not None and length > max_bytes:
                raise PermanentError("object_too_large", f"object {key} is {length} bytes, limit {max_bytes}")
            return bytes(response["Body"].read(limit + 1))
        except (BotoCoreError, ClientError) as exc:
            raise _classify(exc, f"get {key}") from exc

    def exists_sync(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _NOT_FOUND:
                return False
            raise _classify(exc, f"head {key}") from exc
        except BotoCoreError as exc:
            raise _classify(exc, f"head {key}") from exc

    def head_ref_sync(self, key: str) -> ObjectRef | None:
        """ObjectRef of an existing object whose sha256 we recorded at put time, else None."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _NOT_FOUND:
                return None
            raise _classify(exc, f"head {key}") from exc
        except BotoCoreError as exc:
            raise _classify(exc, f"head {key}") from exc
        digest = head.get("Metadata", {}).get("sha256")
        if not digest:
            return None
        return ObjectRef(
            bucket=self.bucket,
            key=key,
            size=int(head["ContentLength"]),
            sha256=digest,
            content_type=head.get("ContentType", "application/octet-stream"),
        )

    def delete_sync(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError) as exc:
            raise _classify(exc, f"delete {key}") from exc

    def presign_put(self, key: str, content_type: str, expires_s: int) -> str:
        return str(
            self.client.generate_presigned_url(
                "put_object",
                Params={"Bucket": self.bucket, "Key": key, "ContentType": content_type},
                ExpiresIn=expires_s,
            )
        )

    def presign_get(self, key: str, expires_s: int) -> str:
        return str(
            self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_s
            )
        )

    def ping_sync(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            raise _classify(exc, "head bucket") from exc

    # ---- async wrappers ------------------------------------------------------------------------
    async def put_bytes(self, key: str, data: bytes, content_type: str, *, if_absent: bool = False) -> ObjectRef:
        return await asyncio.to_thread(self.put_bytes_sync, key, data, content_type, if_absent=if_absent)

    async def get_bytes(self, ref: ObjectRef, *, max_bytes: int | None = None) -> bytes:
        return await asyncio.to_thread(self.get_bytes_sync, ref, max_bytes=max_bytes)

    async def read_untrusted(self, key: str, *, max_bytes: int) -> bytes:
        return await asyncio.to_thread(self.read_untrusted_sync, key, max_bytes=max_bytes)

    async def head_ref(self, key: str) -> ObjectRef | None:
        return await asyncio.to_thread(self.head_ref_sync, key)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.delete_sync, key)

    async def ping(self) -> None:
        await asyncio.to_thread(self.ping_sync)


def _classify(exc: Exception, what: str) -> Exception:
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _NOT_FOUND:
            return PermanentError("object_missing", f"{what}: object not found")
        if code == "PreconditionFailed" or status == 412:
            return PermanentError("object_exists", f"{what}: object already exists")
        if status >= 500 or code in {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout"}:
            return TransientError(f"{what}: S3 {code or status}")
        return PermanentError("storage_error", f"{what}: S3 {code or status}")
    if isinstance(exc, (EndpointConnectionError, ConnectionError, BotoCoreError)):
        return TransientError(f"{what}: storage unreachable ({type(exc).__name__})")
    return TransientError(f"{what}: {type(exc).__name__}")
