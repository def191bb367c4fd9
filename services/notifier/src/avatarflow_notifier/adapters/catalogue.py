"""Pre-generated avatars in S3, and streaming of avatar assets from S3.

Layout in the bucket (``AVATARFLOW_S3_BUCKET``), under ``AVATARFLOW_NOTIFIER_CATALOGUE_PREFIX``
(default ``catalogue/``)::

    catalogue/index.json              {"schema": 1, "default_avatar_id": "...", "avatars": [...]}
    catalogue/<avatar_id>/poster.png  a still image of the avatar

:func:`seed_catalogue` draws a few default avatars (see :mod:`..core.illustrations`) and writes them.
boto3 is blocking, so every call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from avatarflow_runtime.settings import ServiceSettings
from avatarflow_runtime.storage import ObjectStore
from botocore.exceptions import ClientError
from pydantic import BaseModel, Field

from ..core.illustrations import DEFAULT_SPECS, AvatarSpec, draw_avatar

INDEX_NAME = "index.json"
CHUNK_BYTES = 64 * 1024


class CatalogueAsset(BaseModel):
    key: str
    content_type: str
    sha256: str
    size: int = Field(ge=0)


class CatalogueEntry(BaseModel):
    avatar_id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    name: str
    poster: CatalogueAsset
    idle_loop: CatalogueAsset | None = None
    manifest: CatalogueAsset | None = None


class CatalogueIndex(BaseModel):
    schema_: int = Field(default=1, alias="schema")
    default_avatar_id: str | None = None
    avatars: list[CatalogueEntry] = Field(default_factory=list)

    def get(self, avatar_id: str) -> CatalogueEntry | None:
        return next((a for a in self.avatars if a.avatar_id == avatar_id), None)

    @property
    def default(self) -> CatalogueEntry | None:
        if self.default_avatar_id:
            found = self.get(self.default_avatar_id)
            if found:
                return found
        return self.avatars[0] if self.avatars else None


def s3_client_from_settings(settings: ServiceSettings) -> Any:
    """The runtime's S3 client (same endpoint, credentials, timeouts and retry policy as every service)."""
    return ObjectStore.from_settings(settings).client


@dataclass
class S3Object:
    """An open S3 object ready to stream (status 200, or 206 for a range)."""

    status_code: int
    headers: dict[str, str]
    body: Any

    def chunks(self) -> Iterator[bytes]:
        try:
            yield from self.body.iter_chunks(CHUNK_BYTES)
        finally:
            self.body.close()


class ObjectMissing(Exception):
    pass


class RangeNotSatisfiable(Exception):
    pass


class Catalogue:
    def __init__(self, s3: Any, bucket: str, *, prefix: str = "catalogue/", cache_s: float = 30.0) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.prefix = prefix
        self.cache_s = cache_s
        self._cached: tuple[float, CatalogueIndex] | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> Catalogue:
        return cls(
            s3_client_from_settings(settings),
            settings.s3_bucket,
            prefix=settings.notifier_catalogue_prefix,
            cache_s=settings.notifier_catalogue_cache_s,
        )

    def _read_index(self) -> CatalogueIndex:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=self.prefix + INDEX_NAME)["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NoSuchBucket"):
                return CatalogueIndex()
            raise
        with body:
            return CatalogueIndex.model_validate_json(body.read())

    async def index(self) -> CatalogueIndex:
        now = time.monotonic()
        if self._cached is not None and now - self._cached[0] < self.cache_s:
            return self._cached[1]
        index = await asyncio.to_thread(self._read_index)
        self._cached = (now, index)
        return index

    def invalidate(self) -> None:
        self._cached = None

    def _open(self, bucket: str, key: str, range_header: str | None) -> S3Object:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if range_header:
            kwargs["Range"] = range_header
        try:
            response = self.s3.get_object(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("NoSuchKey", "404", "NoSuchBucket"):
                raise ObjectMissing(key) from exc
            if code == "InvalidRange":
                raise RangeNotSatisfiable(key) from exc
            raise
        headers = {
            "content-type": response.get("ContentType") or "application/octet-stream",
            "content-length": str(response["ContentLength"]),
            "accept-ranges": "bytes",
        }
        if response.get("ETag"):
            headers["etag"] = response["ETag"]
        if response.get("ContentRange"):
            headers["content-range"] = response["ContentRange"]
        return S3Object(206 if "ContentRange" in response else 200, headers, response["Body"])

    async def open_object(self, bucket: str, key: str, range_header: str | None = None) -> S3Object:
        return await asyncio.to_thread(self._open, bucket, key, range_header)


def _png_bytes(spec: AvatarSpec) -> bytes:
    buffer = io.BytesIO()
    draw_avatar(spec).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def seed_catalogue(
    s3: Any, bucket: str, *, prefix: str = "catalogue/", specs: tuple[AvatarSpec, ...] = DEFAULT_SPECS
) -> CatalogueIndex:
    """Draw the default avatars and write them plus the index (idempotent: same bytes each time)."""
    entries = []
    for spec in specs:
        data = _png_bytes(spec)
        key = f"{prefix}{spec.avatar_id}/poster.png"
        s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType="image/png")
        asset = CatalogueAsset(
            key=key, content_type="image/png", sha256=hashlib.sha256(data).hexdigest(), size=len(data)
        )
        entries.append(CatalogueEntry(avatar_id=spec.avatar_id, name=spec.name, poster=asset))
    index = CatalogueIndex(default_avatar_id=specs[0].avatar_id if specs else None, avatars=entries)
    s3.put_object(
        Bucket=bucket,
        Key=prefix + INDEX_NAME,
        Body=json.dumps(index.model_dump(mode="json", by_alias=True), indent=2).encode(),
        ContentType="application/json",
    )
    return index
