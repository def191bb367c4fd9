"""The bucket key scheme (libs/runtime keys.py): what makes a stored object's name trustworthy."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from avatarflow_runtime.keys import confirm_record_key, original_key, pack_key


def test_a_pack_from_other_input_never_overwrites_an_advertised_one() -> None:
    """Issue 19 item 1: two runs of one upload with different bytes wrote the same pack keys, so the
    public URL served the second run's bytes while the status still named the first pack's hashes."""
    upload = uuid.uuid4()
    first, second = hashlib.sha256(b"cutout one").hexdigest(), hashlib.sha256(b"cutout two").hexdigest()
    assert pack_key(upload, "poster.png", first) != pack_key(upload, "poster.png", second)
    # A redelivery of the same input rewrites the same key (packs are deterministic).
    assert pack_key(upload, "poster.png", first) == pack_key(upload, "poster.png", first)
    # One version directory per pack, so the manifest's relative names still resolve.
    assert (
        pack_key(upload, "poster.png", first).rsplit("/", 1)[0]
        == pack_key(upload, "idle.webm", first).rsplit("/", 1)[0]
    )
    with pytest.raises(ValueError):
        pack_key(upload, "poster.png", "../../catalogue")


def test_a_confirmed_original_gets_a_key_the_grant_did_not_name() -> None:
    upload = uuid.uuid4()
    staged, confirmed = original_key(upload, "image/jpeg"), original_key(upload, "image/jpeg")
    assert staged != confirmed and staged.startswith(f"originals/{upload}/")
    assert confirm_record_key(upload) == f"idempotency/confirm-{upload}.json"
