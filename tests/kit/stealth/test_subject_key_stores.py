"""The SubjectKeyStore contract, run against the in-memory, SQLite and PostgreSQL adapters."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import os
import uuid
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import MetaData, text

from outrigger.db import build_engine
from outrigger.errors import DatabaseError
from outrigger.stealth import (
    ERASED,
    InMemorySubjectKeyStore,
    Keyring,
    MasterKey,
    SqlSubjectKeyStore,
    Stealth,
    SubjectKeyStore,
    WrappedKey,
    subject_keys_table,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from contextlib import AbstractAsyncContextManager


def candidate(subject: str, master_kid: str = "k1") -> WrappedKey:
    return WrappedKey(subject, uuid.uuid4().hex, master_kid, b"\x00" + os.urandom(59) + b"\x00")


class SubjectKeyStoreContract(abc.ABC):
    """Subclasses name an adapter by implementing `make_store`."""

    @abc.abstractmethod
    def make_store(
        self, request: pytest.FixtureRequest
    ) -> AbstractAsyncContextManager[SubjectKeyStore]:
        """Each adapter's subclass builds its own."""

    @pytest.fixture
    async def store(self, request: pytest.FixtureRequest) -> AsyncIterator[SubjectKeyStore]:
        async with self.make_store(request) as store:
            yield store

    async def test_an_unknown_subject_has_no_key(self, store: SubjectKeyStore) -> None:
        assert await store.get("nobody") is None

    async def test_the_first_candidate_becomes_the_key(self, store: SubjectKeyStore) -> None:
        first, second = candidate("u-1"), candidate("u-1")
        assert await store.get_or_create(first) == first
        assert await store.get_or_create(second) == first
        assert await store.get("u-1") == first

    async def test_concurrent_creation_ends_with_one_key(self, store: SubjectKeyStore) -> None:
        candidates = [candidate("new-subject") for _ in range(12)]
        keys = await asyncio.gather(*(store.get_or_create(c) for c in candidates))
        assert len({key.key_id for key in keys}) == 1
        assert keys[0] in candidates
        assert await store.get("new-subject") == keys[0]

    async def test_delete_forgets_for_good(self, store: SubjectKeyStore) -> None:
        kept, forgotten = candidate("kept"), candidate("forgotten")
        await store.get_or_create(kept)
        await store.get_or_create(forgotten)
        assert await store.delete("forgotten") is True
        assert await store.get("forgotten") is None
        assert await store.delete("forgotten") is False
        assert await store.delete("never-there") is False
        assert await store.get("kept") == kept
        fresh = candidate("forgotten")
        assert await store.get_or_create(fresh) == fresh

    async def test_subjects_are_opaque_strings(self, store: SubjectKeyStore) -> None:
        for subject in ("ünï 😀", "a:b,c'd\"e;--", "x" * 400):
            key = candidate(subject)
            assert await store.get_or_create(key) == key
            assert await store.get(subject) == key

    async def test_keys_wrapped_by_other_master_keys_are_listed(
        self, store: SubjectKeyStore
    ) -> None:
        for subject, kid in (("c", "old"), ("a", "old"), ("b", "new"), ("d", "older")):
            await store.get_or_create(candidate(subject, kid))
        assert [key.subject for key in await store.not_wrapped_by("new", 10)] == ["a", "c", "d"]
        assert [key.subject for key in await store.not_wrapped_by("new", 2)] == ["a", "c"]
        assert await store.not_wrapped_by("none", 0) == []

    async def test_replace_rewraps_only_the_current_key(self, store: SubjectKeyStore) -> None:
        current = await store.get_or_create(candidate("s", "old"))
        rewrapped = WrappedKey("s", current.key_id, "new", b"rewrapped")
        assert await store.replace(current, rewrapped) is True
        assert await store.get("s") == rewrapped
        assert await store.replace(current, rewrapped) is False
        with pytest.raises(ValueError, match="same subject's same key"):
            await store.replace(rewrapped, WrappedKey("s", "other", "new", b"x"))
        await store.delete("s")
        assert await store.replace(rewrapped, WrappedKey("s", current.key_id, "x", b"y")) is False
        assert await store.get("s") is None

    async def test_crypto_shredding_end_to_end(self, store: SubjectKeyStore) -> None:
        stealth = Stealth(Keyring([MasterKey.generate("k1")]), store)
        stored = await stealth.obfuscate({"email": "a@example.org"}, ["email"], subject="u-9")
        assert await stealth.deobfuscate(stored, ["email"], subject="u-9") == {
            "email": "a@example.org"
        }
        assert await stealth.forget("u-9") is True
        assert await stealth.deobfuscate(stored, ["email"], subject="u-9") == {"email": ERASED}


class TestInMemory(SubjectKeyStoreContract):
    @contextlib.asynccontextmanager
    async def make_store(self, request: pytest.FixtureRequest) -> AsyncIterator[SubjectKeyStore]:
        yield InMemorySubjectKeyStore()


class TestSqlite(SubjectKeyStoreContract):
    @contextlib.asynccontextmanager
    async def make_store(self, request: pytest.FixtureRequest) -> AsyncIterator[SubjectKeyStore]:
        path = request.getfixturevalue("tmp_path") / "keys.db"
        engine = build_engine(f"sqlite+aiosqlite:///{path}", schemas=["vault"])
        metadata = MetaData()
        table = subject_keys_table(metadata, schema="vault")
        try:
            async with engine.begin() as connection:
                await connection.run_sync(metadata.create_all)
            yield SqlSubjectKeyStore(engine, table)
        finally:
            await engine.dispose()


@pytest.mark.postgres
class TestPostgres(SubjectKeyStoreContract):
    @contextlib.asynccontextmanager
    async def make_store(self, request: pytest.FixtureRequest) -> AsyncIterator[SubjectKeyStore]:
        schema = f"stealth_test_{uuid.uuid4().hex[:12]}"
        engine = build_engine(request.getfixturevalue("postgres_url"), pool_size=12)
        metadata = MetaData()
        table = subject_keys_table(metadata, schema=schema)
        try:
            async with engine.begin() as connection:
                await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
                await connection.run_sync(metadata.create_all)
            yield SqlSubjectKeyStore(engine, table)
        finally:
            async with engine.begin() as connection:
                await connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            await engine.dispose()


async def test_an_unreachable_database_is_a_database_error() -> None:
    engine = build_engine("postgresql+psycopg://postgres@127.0.0.1:9/nothing", pool_timeout=1)
    store = SqlSubjectKeyStore(engine, subject_keys_table(MetaData()))
    try:
        with pytest.raises(DatabaseError, match="database"):
            await store.get("u-1")
    finally:
        await engine.dispose()


def test_the_table_has_one_row_per_subject() -> None:
    table = subject_keys_table(MetaData(), schema="audit", name="subject_keys")
    assert table.fullname == "audit.subject_keys"
    assert [column.name for column in table.primary_key] == ["subject"]
    assert {"key_id", "master_kid", "wrapped_key", "created_at"} <= set(table.c.keys())
