"""Pre-generated avatar catalogue: drawing and the S3 index."""

from __future__ import annotations

import json

import numpy as np
from avatarflow_notifier.adapters.catalogue import Catalogue, CatalogueIndex, seed_catalogue
from avatarflow_notifier.core.illustrations import DEFAULT_SPECS, draw_avatar
from notifier_fixtures import BUCKET


def test_drawing_is_deterministic_and_not_blank():
    spec = DEFAULT_SPECS[0]
    a, b = np.asarray(draw_avatar(spec, 128)), np.asarray(draw_avatar(spec, 128))
    assert a.shape == (128, 128, 3) and np.array_equal(a, b)
    centre = a[40:90, 40:90].reshape(-1, 3)
    assert np.abs(centre.astype(int) - np.array(spec.skin)).sum(axis=1).min() < 30  # a face is drawn
    assert len(np.unique(a.reshape(-1, 3), axis=0)) > 50  # not a flat image


def test_avatars_differ_from_each_other():
    images = [np.asarray(draw_avatar(s, 64)).astype(int) for s in DEFAULT_SPECS]
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            assert np.abs(images[i] - images[j]).mean() > 10


async def test_seeded_index_lists_every_avatar_with_its_poster(s3, seeded_catalogue):
    raw = s3.client.get_object(Bucket=BUCKET, Key="catalogue/index.json")["Body"].read()
    index = CatalogueIndex.model_validate(json.loads(raw))
    assert [a.avatar_id for a in index.avatars] == [s.avatar_id for s in DEFAULT_SPECS]
    assert index.default.avatar_id == DEFAULT_SPECS[0].avatar_id
    for entry in index.avatars:
        head = s3.client.head_object(Bucket=BUCKET, Key=entry.poster.key)
        assert head["ContentLength"] == entry.poster.size and entry.poster.key.startswith("catalogue/")
    assert seed_catalogue(s3.client, BUCKET) == index  # idempotent
    catalogue = Catalogue(s3.client, BUCKET)
    assert (await catalogue.index()) == index


async def test_missing_index_is_an_empty_catalogue(s3):
    assert (await Catalogue(s3.client, BUCKET, prefix="nowhere/").index()).avatars == []
