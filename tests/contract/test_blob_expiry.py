"""Blobs are shared by content and expire by age: reusing an old one must refresh its age.

The bucket's lifecycle rule expires an object ``BlobRetentionDays`` after its
last write. A run that stores a value whose blob was first written 89 days
ago reuses that object, so the reuse resets its age (a copy onto itself);
a blob younger than ``BLOB_REFRESH_AFTER`` is left alone, so reuse stays cheap.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from contract_backends import Backend

from durable_lambda.testing.aws_counter import RequestCounter
from durable_lambda.values import BLOB_REFRESH_AFTER

BIG = '"' + "x" * (70 * 1024) + '"'  # above the 64 KB inline limit


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _moto_key(backend: Backend, key: str) -> Any:
    from moto.core import DEFAULT_ACCOUNT_ID  # noqa: PLC0415
    from moto.s3.models import s3_backends  # noqa: PLC0415

    return s3_backends[DEFAULT_ACCOUNT_ID]["aws"].buckets[backend.settings.bucket_name].keys[key]


def modified(backend: Backend, key: str) -> dt.datetime:
    """When the blob was last written, as the backend records it."""
    if backend.name == "memory":
        return backend.store.values.blobs.modified[key]  # type: ignore[attr-defined, no-any-return]
    return _moto_key(backend, key).last_modified.replace(tzinfo=dt.UTC)  # type: ignore[no-any-return]


def set_modified(backend: Backend, key: str, when: dt.datetime) -> None:
    """Pretend the blob was written at ``when`` (what the lifecycle rule compares)."""
    if backend.name == "memory":
        backend.store.values.blobs.modified[key] = when  # type: ignore[attr-defined]
    else:
        _moto_key(backend, key).last_modified = when.replace(tzinfo=None)


def test_storing_a_value_whose_blob_is_89_days_old_refreshes_it(backend: Backend):
    ref = backend.store.values.store("step 'a' result", BIG).ref  # type: ignore[attr-defined]
    assert ref is not None
    set_modified(backend, ref, now() - dt.timedelta(days=89))
    again = backend.store.values.store("step 'b' result", BIG).ref  # type: ignore[attr-defined]
    assert again == ref
    assert now() - modified(backend, ref) < dt.timedelta(hours=1)
    assert backend.store.values.load(backend.store.values.store("c", BIG)) == BIG  # type: ignore[attr-defined]
    assert backend.blob_count() == 1


def test_reusing_a_young_blob_does_not_rewrite_it(backend: Backend):
    ref = backend.store.values.store("step 'a' result", BIG).ref  # type: ignore[attr-defined]
    assert ref is not None
    young = now() - BLOB_REFRESH_AFTER / 2
    set_modified(backend, ref, young)
    counter = None
    if backend.name == "moto":
        counter = RequestCounter().attach(backend.store.values.blobs.client)  # type: ignore[attr-defined]
    backend.store.values.store("step 'b' result", BIG)  # type: ignore[attr-defined]
    assert modified(backend, ref).replace(microsecond=0) == young.replace(microsecond=0)
    if counter is not None:
        assert counter.count("s3", ["CopyObject"]) == 0


@pytest.mark.parametrize("age_days", [2, 89])
def test_a_refreshed_blob_keeps_its_content(backend: Backend, age_days: int):
    ref = backend.store.values.store("v", BIG).ref  # type: ignore[attr-defined]
    assert ref is not None
    set_modified(backend, ref, now() - dt.timedelta(days=age_days))
    backend.store.values.store("v", BIG)  # type: ignore[attr-defined]
    assert backend.store.values.blobs.get(ref) == BIG.encode()  # type: ignore[attr-defined]
