"""obfuscate/deobfuscate: JSON types, paths, rotation, path binding, tampering, crypto-shredding."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from outrigger.errors import Gone, InvalidInput
from outrigger.stealth import (
    ERASED,
    MASKED,
    UNREADABLE,
    InMemorySubjectKeyStore,
    Keyring,
    MasterKey,
    Stealth,
    StealthError,
    SubjectErased,
    TamperedCiphertext,
    UnknownKeyId,
    WrappedKey,
    is_erased,
    is_protected,
)

VALUES = [
    "4111 1111 1111 1111",
    "",
    "ünïcödé ✓ 😀",
    0,
    -7,
    2**53 + 1,
    3.25,
    True,
    False,
    None,
    [1, "a", None, [2.5]],
    {"a": {"b": [1, {"c": None}]}},
    {},
    [],
]


@pytest.mark.parametrize("value", VALUES)
async def test_every_json_type_round_trips(stealth: Stealth, value: Any) -> None:
    document = {"secret": value, "plain": "kept"}
    original = copy.deepcopy(document)
    stored = await stealth.obfuscate(document, ["secret"])
    assert stored["secret"].startswith("$stealth:v1:k1:")
    assert stored["plain"] == "kept"
    assert document == original
    revealed = await stealth.deobfuscate(stored, ["secret"])
    assert revealed == original
    assert type(revealed["secret"]) is type(value)


def sample() -> dict[str, Any]:
    return {
        "card": {"number": "4111", "expiry": "12/30"},
        "items": [{"ssn": "1-1", "name": "a"}, {"ssn": "2-2"}, {"name": "no ssn"}],
        "contacts": {"home": {"phone": "555-1"}, "work": {"phone": "555-2"}},
        "tags": ["x", "y"],
    }


FIELDS = [
    "card.number",
    "items.*.ssn",
    "contacts.*.phone",
    "tags.1",
    "missing.path",
    "card.number.deeper",
    "items.9.ssn",
]


async def test_nested_and_wildcard_paths(stealth: Stealth) -> None:
    stored = await stealth.obfuscate(sample(), FIELDS)
    assert is_protected(stored["card"]["number"])
    assert stored["card"]["expiry"] == "12/30"
    assert [is_protected(item.get("ssn")) for item in stored["items"]] == [True, True, False]
    assert stored["items"][0]["name"] == "a"
    assert is_protected(stored["contacts"]["home"]["phone"])
    assert is_protected(stored["contacts"]["work"]["phone"])
    assert stored["tags"][0] == "x"
    assert is_protected(stored["tags"][1])
    assert "missing" not in stored
    assert await stealth.deobfuscate(stored, FIELDS) == sample()


async def test_a_whole_object_or_list_can_be_one_field(stealth: Stealth) -> None:
    stored = await stealth.obfuscate(sample(), ["card", "items", "contacts.*"])
    assert is_protected(stored["card"])
    assert is_protected(stored["items"])
    assert all(is_protected(value) for value in stored["contacts"].values())
    assert await stealth.deobfuscate(stored, ["card", "items", "contacts.*"]) == sample()


async def test_overlapping_paths_read_back_with_the_same_list(stealth: Stealth) -> None:
    for fields in (["card", "card.number"], ["card.number", "card"]):
        stored = await stealth.obfuscate(sample(), fields)
        assert await stealth.deobfuscate(stored, fields) == sample()


async def test_obfuscating_twice_changes_nothing(stealth: Stealth) -> None:
    once = await stealth.obfuscate(sample(), FIELDS)
    assert await stealth.obfuscate(once, FIELDS) == once
    assert await stealth.deobfuscate(sample(), FIELDS) == sample()


async def test_list_items_stay_readable_when_reordered(stealth: Stealth) -> None:
    stored = await stealth.obfuscate(sample(), ["items.*.ssn"])
    stored["items"].reverse()
    revealed = await stealth.deobfuscate(stored, ["items.*.ssn"])
    assert [item.get("ssn") for item in revealed["items"]] == [None, "2-2", "1-1"]
    assert (await stealth.deobfuscate(stored, ["items.1.ssn"]))["items"][1]["ssn"] == "2-2"


async def test_a_ciphertext_cannot_move_to_another_field(stealth: Stealth) -> None:
    stored = await stealth.obfuscate(sample(), ["card.*", "contacts.*.phone"])
    stored["card"]["expiry"] = stored["card"]["number"]
    with pytest.raises(TamperedCiphertext, match=r"^card\.expiry: ciphertext failed"):
        await stealth.deobfuscate(stored, ["card.expiry"])
    contacts = stored["contacts"]
    contacts["home"]["phone"] = contacts["work"]["phone"]
    with pytest.raises(TamperedCiphertext, match=r"contacts\.home\.phone"):
        await stealth.deobfuscate(stored, ["contacts.*.phone"])


def flip(ciphertext: str, at: int = -5) -> str:
    replacement = "A" if ciphertext[at] != "A" else "B"
    return ciphertext[:at] + replacement + ciphertext[at + 1 :]


@pytest.mark.parametrize(
    "damage",
    [flip, lambda c: flip(c, 30), lambda c: c[:-10], lambda c: c.rsplit(":", 1)[0] + ":"],
)
async def test_tampering_is_detected(stealth: Stealth, damage: Any) -> None:
    stored = await stealth.obfuscate({"ssn": "123-45"}, ["ssn"])
    with pytest.raises(TamperedCiphertext) as caught:
        await stealth.deobfuscate({"ssn": damage(stored["ssn"])}, ["ssn"])
    assert caught.value.status == 500
    assert "123-45" not in caught.value.detail


async def test_unknown_key_ids_and_formats_are_named(stealth: Stealth, k2: MasterKey) -> None:
    stored = await stealth.obfuscate({"ssn": "1"}, ["ssn"])
    with pytest.raises(UnknownKeyId, match="no stealth key 'k1'"):
        await Stealth(Keyring([k2])).deobfuscate(stored, ["ssn"])
    future = {"ssn": stored["ssn"].replace(":v1:", ":v9:")}
    with pytest.raises(StealthError, match="unsupported stealth format 'v9'"):
        await stealth.deobfuscate(future, ["ssn"])


async def test_with_on_unreadable_a_bad_field_is_marked_and_the_rest_revealed(
    stealth: Stealth, k2: MasterKey
) -> None:
    stored = await stealth.obfuscate({"a": "1", "b": "2", "c": "3"}, ["a", "b"])
    stored = await stealth.obfuscate(stored, ["c"], subject="s")
    damaged = {**stored, "a": flip(stored["a"])}
    errors: list[StealthError] = []
    revealed = await stealth.deobfuscate(
        damaged, ["a", "b", "c"], subject="s", on_unreadable=errors.append
    )
    assert revealed == {"a": UNREADABLE, "b": "2", "c": "3"}
    assert [type(error) for error in errors] == [TamperedCiphertext]
    assert "1" not in errors[0].detail
    # a keyring without the field's key: every master-key field (and the subject key it wraps)
    errors.clear()
    without_k1 = Stealth(Keyring([k2]), stealth.subject_keys)
    revealed = await without_k1.deobfuscate(
        stored, ["a", "b", "c"], subject="s", on_unreadable=errors.append
    )
    assert revealed == {"a": UNREADABLE, "b": UNREADABLE, "c": UNREADABLE}
    assert {type(error) for error in errors} == {UnknownKeyId}
    # a forgotten subject still reads as erased, not unreadable
    await stealth.forget("s")
    revealed = await stealth.deobfuscate(stored, ["c"], subject="s", on_unreadable=errors.append)
    assert revealed == {**stored, "c": ERASED}


async def test_rotation_keeps_old_data_readable(k1: MasterKey, k2: MasterKey) -> None:
    old = await Stealth(Keyring([k1])).obfuscate({"ssn": "old"}, ["ssn"])
    rotated = Stealth(Keyring([k2, k1]))
    new = await rotated.obfuscate({"ssn": "new"}, ["ssn"])
    assert new["ssn"].startswith("$stealth:v1:k2:")
    assert await rotated.deobfuscate(old, ["ssn"]) == {"ssn": "old"}
    assert await rotated.deobfuscate(new, ["ssn"]) == {"ssn": "new"}


async def test_bad_paths_and_values_are_invalid_input(stealth: Stealth) -> None:
    for path in ("", "a..b", ".a", "a."):
        with pytest.raises(InvalidInput, match="field path"):
            await stealth.obfuscate({"a": 1}, [path])
    with pytest.raises(InvalidInput, match="secret: a set is not JSON"):
        await stealth.obfuscate({"secret": {1, 2}}, ["secret"])


# --- per-subject keys -------------------------------------------------------------------------


async def test_subject_data_reads_back_until_forgotten(stealth: Stealth) -> None:
    stored = await stealth.obfuscate(sample(), FIELDS, subject="u-42")
    assert stored["card"]["number"].startswith("$stealth:v1:@")
    assert await stealth.deobfuscate(stored, FIELDS, subject="u-42") == sample()
    with pytest.raises(StealthError, match="pass subject="):
        await stealth.deobfuscate(stored, FIELDS)

    assert await stealth.forget("u-42") is True
    assert await stealth.forget("u-42") is False
    erased = await stealth.deobfuscate(stored, FIELDS, subject="u-42")
    assert erased["card"] == {"number": ERASED, "expiry": "12/30"}
    assert erased["card"]["number"] == {"$erased": True, "reason": "subject key deleted"}
    assert is_erased(erased["items"][1]["ssn"])
    assert erased["items"][2] == {"name": "no ssn"}
    assert erased["tags"][0] == "x"

    with pytest.raises(SubjectErased) as caught:
        await stealth.deobfuscate(stored, FIELDS, subject="u-42", strict=True)
    assert isinstance(caught.value, Gone)
    assert caught.value.status == 410
    assert "'u-42' was deleted" in caught.value.detail


async def test_a_forgotten_subject_gets_a_new_key_and_old_data_stays_erased(
    stealth: Stealth,
) -> None:
    old = await stealth.obfuscate({"ssn": "old"}, ["ssn"], subject="u-1")
    await stealth.forget("u-1")
    new = await stealth.obfuscate({"ssn": "new"}, ["ssn"], subject="u-1")
    assert await stealth.deobfuscate(new, ["ssn"], subject="u-1") == {"ssn": "new"}
    assert await stealth.deobfuscate(old, ["ssn"], subject="u-1") == {"ssn": ERASED}
    assert await stealth.obfuscate({"ssn": ERASED}, ["ssn"], subject="u-1") == {"ssn": ERASED}


async def test_masking_shows_erased_only_where_the_subject_key_was_deleted(
    stealth: Stealth,
) -> None:
    old = await stealth.obfuscate({"ssn": "old", "note": "n"}, ["ssn"], subject="u-1")
    master = await stealth.obfuscate({"ssn": "m"}, ["ssn"])
    assert await stealth.mask(old, ["ssn"], subject="u-1") == {"ssn": MASKED, "note": "n"}
    await stealth.forget("u-1")
    new = await stealth.obfuscate({"ssn": "new"}, ["ssn"], subject="u-1")
    assert await stealth.mask(old, ["ssn"], subject="u-1") == {"ssn": ERASED, "note": "n"}
    assert await stealth.mask(new, ["ssn"], subject="u-1") == {"ssn": MASKED}
    assert await stealth.mask(old, ["ssn"]) == {"ssn": MASKED, "note": "n"}  # no subject named
    assert await stealth.mask(master, ["ssn"], subject="u-1") == {"ssn": MASKED}


async def test_each_subject_has_its_own_key(stealth: Stealth) -> None:
    alice = await stealth.obfuscate({"ssn": "a"}, ["ssn"], subject="alice")
    bob = await stealth.obfuscate({"ssn": "b"}, ["ssn"], subject="bob")
    assert alice["ssn"].split(":")[2] != bob["ssn"].split(":")[2]
    await stealth.forget("alice")
    assert await stealth.deobfuscate(bob, ["ssn"], subject="bob") == {"ssn": "b"}


async def test_subject_keys_survive_master_rotation(k1: MasterKey, k2: MasterKey) -> None:
    store = InMemorySubjectKeyStore()
    stored = await Stealth(Keyring([k1]), store).obfuscate({"ssn": "1"}, ["ssn"], subject="s")
    rotated = Stealth(Keyring([k2, k1]), store)
    assert await rotated.deobfuscate(stored, ["ssn"], subject="s") == {"ssn": "1"}
    await rotated.obfuscate({"ssn": "2"}, ["ssn"], subject="t")
    assert {key.master_kid for key in await store.not_wrapped_by("k2", 10)} == {"k1"}

    assert await rotated.rewrap_subject_keys(batch=1) == 1
    assert await store.not_wrapped_by("k2", 10) == []
    retired = Stealth(Keyring([k2]), store)
    assert await retired.deobfuscate(stored, ["ssn"], subject="s") == {"ssn": "1"}


async def test_a_tampered_stored_key_is_detected(stealth: Stealth) -> None:
    stored = await stealth.obfuscate({"ssn": "1"}, ["ssn"], subject="s")
    store = stealth.subject_keys
    assert isinstance(store, InMemorySubjectKeyStore)
    key = await store.get("s")
    assert key is not None
    forged = WrappedKey("mallory", key.key_id, key.master_kid, key.wrapped)
    await store.delete("s")
    await store.get_or_create(
        WrappedKey("s", key.key_id, key.master_kid, key.wrapped[:-1] + bytes([key.wrapped[-1] ^ 1]))
    )
    with pytest.raises(TamperedCiphertext, match="stored key of subject 's'"):
        await stealth.deobfuscate(stored, ["ssn"], subject="s")
    await store.get_or_create(forged)
    with pytest.raises(TamperedCiphertext, match="stored key of subject 'mallory'"):
        await stealth.deobfuscate(stored, ["ssn"], subject="mallory")


async def test_subject_keys_need_a_store(k1: MasterKey) -> None:
    with pytest.raises(RuntimeError, match="SubjectKeyStore"):
        await Stealth(Keyring([k1])).obfuscate({"ssn": "1"}, ["ssn"], subject="s")
