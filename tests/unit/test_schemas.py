"""The JSON Schemas in schemas/ and stream.adapters.validation agree with the jsonschema library.

fastjsonschema (used at ingestion) and jsonschema (the reference implementation) must give the
same verdict on every example, and a rejection must name the offending field.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from stream.adapters.validation import (
    INPUT_SCHEMAS,
    SCHEMA_NAMES,
    SchemaError,
    Validators,
    get_validators,
    load_schema,
    schemas_dir,
)

SCHEMAS = {name: load_schema(name) for name in SCHEMA_NAMES}
REGISTRY = Registry().with_resources(
    (s["$id"], DRAFT202012.create_resource(s)) for s in SCHEMAS.values()
)
REFERENCE = {name: Draft202012Validator(s, registry=REGISTRY) for name, s in SCHEMAS.items()}
TS = 1_700_000_000_000


@pytest.fixture(scope="module")
def validators() -> Validators:
    return get_validators()


def example(name: str) -> dict[str, Any]:
    return copy.deepcopy(SCHEMAS[name]["examples"][0])


def with_(name: str, path: str, value: Any) -> dict[str, Any]:
    """The schema's example with the (dotted, [i]-indexed) field set; value DELETE removes it."""
    obj = example(name)
    keys: list[str | int] = []
    for part in path.split("."):
        key, _, index = part.partition("[")
        keys.append(key)
        if index:
            keys.append(int(index.rstrip("]")))
    target: Any = obj
    for key in keys[:-1]:
        target = target[key]
    if value is DELETE:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value
    return obj


DELETE = object()


def check(validators: Validators, name: str, obj: object) -> SchemaError | None:
    """Validate with both libraries, assert they agree, return our error (None if valid)."""
    reference_ok = REFERENCE[name].is_valid(obj)
    try:
        validators.validate(name, obj)
    except SchemaError as err:
        assert not reference_ok, f"only fastjsonschema rejects {obj!r}: {err}"
        return err
    assert reference_ok, (
        f"only jsonschema rejects {obj!r}: {list(REFERENCE[name].iter_errors(obj))}"
    )
    return None


# --- the schema files themselves ------------------------------------------------------------


def test_every_schema_file_is_listed() -> None:
    on_disk = {p.name.removesuffix(".schema.json") for p in schemas_dir().glob("*.schema.json")}
    assert on_disk == set(SCHEMA_NAMES)


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_schema_is_valid_draft_2020_12(name: str) -> None:
    schema = SCHEMAS[name]
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"recstream/{name}"
    assert schema["title"] and schema["description"]


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_embedded_examples_are_valid(validators: Validators, name: str) -> None:
    assert SCHEMAS[name]["examples"]
    for obj in SCHEMAS[name]["examples"]:
        assert check(validators, name, obj) is None


# --- generic: every required field, missing or mistyped, is rejected and named ---------------

REQUIRED = [(n, f) for n in SCHEMA_NAMES for f in SCHEMAS[n].get("required", [])]


@pytest.mark.parametrize(("name", "field"), REQUIRED)
def test_missing_required_field_is_named(validators: Validators, name: str, field: str) -> None:
    err = check(validators, name, with_(name, field, DELETE))
    assert err is not None and err.path == field and f"'{field}'" in str(err)
    assert err.rule == "required" and "\n" not in str(err)


@pytest.mark.parametrize(("name", "field"), REQUIRED)
def test_wrong_type_of_required_field_is_named(
    validators: Validators, name: str, field: str
) -> None:
    bad: Any = [] if isinstance(example(name)[field], str) else "x"
    err = check(validators, name, with_(name, field, bad))
    assert err is not None and err.path == field and f"'{field}'" in str(err)


@pytest.mark.parametrize("name", SCHEMA_NAMES)
@pytest.mark.parametrize("obj", [None, "text", 3, [], True])
def test_non_object_message_is_rejected(validators: Validators, name: str, obj: object) -> None:
    err = check(validators, name, obj)
    assert err is not None and err.path == "" and str(err).startswith(f"{name}: message ")


@pytest.mark.parametrize("name", (*INPUT_SCHEMAS, "ranking-profiles"))
def test_input_messages_allow_extra_properties(validators: Validators, name: str) -> None:
    assert check(validators, name, with_(name, "future_field", {"any": [1, "thing"]})) is None


@pytest.mark.parametrize("name", ["recommendations", "dead-letters"])
def test_output_messages_are_closed(validators: Validators, name: str) -> None:
    err = check(validators, name, with_(name, "surprise", 1))
    assert err is not None and err.path == "surprise"


# --- per message type: valid and invalid cases -----------------------------------------------

BIG_ID = "x" * 257
VALID = [
    ("clicks", with_("clicks", "context", {})),
    ("clicks", {"event_id": "e", "user_id": "u", "item_id": "i", "ts": 0}),
    ("clicks", with_("clicks", "item_id", "y" * 256)),
    ("dwell", with_("dwell", "dwell_ms", 0)),
    ("carts", with_("carts", "action", "unfavorite")),
    ("carts", with_("carts", "quantity", DELETE)),
    ("orders", with_("orders", "items", [{"item_id": "a"}] * 500)),
    ("orders", with_("orders", "items[0].price", 0)),
    ("returns", with_("returns", "reason", DELETE)),
    ("searches", with_("searches", "filters", {"size": ["M", 32], "sale": False, "max": 9.5})),
    ("searches", {"event_id": "e", "user_id": "u", "ts": TS}),
    ("stock", with_("stock", "available", 0)),
    ("catalog", {"item_id": "bare", "ts": TS}),
    ("catalog", with_("catalog", "attributes", {})),
    ("catalog", with_("catalog", "attributes.category", "Trousers")),
    ("catalog", with_("catalog", "attributes.tags", ["a", "b"])),
    ("catalog", with_("catalog", "flags", {"deal": False})),
    ("recommendations", with_("recommendations", "items", [])),
    ("recommendations", with_("recommendations", "latency_ms", DELETE)),
    ("dead-letters", with_("dead-letters", "key", None)),
    ("dead-letters", with_("dead-letters", "ts", None)),
    ("dead-letters", {"topic": "t", "partition": 0, "offset": 0, "error": "e", "raw": ""}),
    ("ranking-profiles", {"name": "minimal", "version": 1}),
    ("dataset-line", {"topic": "catalog", "item_id": "i", "ts": 0}),
    ("dataset-line", dict(example("orders"), topic="orders")),
    ("dataset-line", dict(example("stock"), topic="stock")),
]

INVALID = [  # (schema, message, field the error must name)
    ("clicks", with_("clicks", "ts", -1), "ts"),
    ("clicks", with_("clicks", "ts", 1.5), "ts"),
    ("clicks", with_("clicks", "ts", "1700000000000"), "ts"),
    ("clicks", with_("clicks", "user_id", ""), "user_id"),
    ("clicks", with_("clicks", "item_id", BIG_ID), "item_id"),
    ("clicks", with_("clicks", "item_id", 42), "item_id"),
    ("clicks", with_("clicks", "context.device", 1), "context.device"),
    ("clicks", with_("clicks", "context", "mobile"), "context"),
    ("clicks", with_("clicks", "session_id", None), "session_id"),
    ("dwell", with_("dwell", "dwell_ms", -5), "dwell_ms"),
    ("dwell", with_("dwell", "dwell_ms", 2.5), "dwell_ms"),
    ("carts", with_("carts", "action", "buy"), "action"),
    ("carts", with_("carts", "quantity", 0), "quantity"),
    ("carts", with_("carts", "quantity", True), "quantity"),
    ("orders", with_("orders", "items", []), "items"),
    ("orders", with_("orders", "items", [{"item_id": "a"}] * 501), "items"),
    ("orders", with_("orders", "items[1]", {"quantity": 1}), "items[1].item_id"),
    ("orders", with_("orders", "items[0].quantity", 0), "items[0].quantity"),
    ("orders", with_("orders", "items[0].price", -0.01), "items[0].price"),
    ("orders", with_("orders", "items[0].price", True), "items[0].price"),
    ("orders", with_("orders", "items[0]", "i-1"), "items[0]"),
    ("returns", with_("returns", "reason", 3), "reason"),
    ("searches", with_("searches", "filters", {"size": {"eq": "M"}}), "filters.size"),
    ("searches", with_("searches", "filters", {"size": [True]}), "filters.size"),
    ("searches", with_("searches", "filters", ["size:M"]), "filters"),
    ("searches", with_("searches", "query", None), "query"),
    ("stock", with_("stock", "available", -1), "available"),
    ("stock", with_("stock", "available", "3"), "available"),
    ("catalog", with_("catalog", "attributes.category", [1, 2]), "attributes.category"),
    ("catalog", with_("catalog", "attributes.brand", 7), "attributes.brand"),
    ("catalog", with_("catalog", "attributes.price", -1), "attributes.price"),
    ("catalog", with_("catalog", "attributes.tags", [1]), "attributes.tags"),
    ("catalog", with_("catalog", "attributes.dims", {"w": 1}), "attributes.dims"),
    ("catalog", with_("catalog", "flags.deal", "yes"), "flags.deal"),
    ("catalog", with_("catalog", "deleted", 1), "deleted"),
    ("recommendations", with_("recommendations", "feed", "deals"), "feed"),
    ("recommendations", with_("recommendations", "items[0].reasons", "x"), "items[0].reasons"),
    ("recommendations", with_("recommendations", "items[0].score", None), "items[0].score"),
    ("recommendations", with_("recommendations", "items[0].reasons", DELETE), "items[0].reasons"),
    (
        "recommendations",
        with_("recommendations", "items", [example("recommendations")["items"][0]] * 201),
        "items",
    ),
    ("recommendations", with_("recommendations", "profile", "default"), "profile"),
    ("recommendations", with_("recommendations", "trigger.ts", DELETE), "trigger.ts"),
    ("recommendations", with_("recommendations", "emitted_at", -1), "emitted_at"),
    ("recommendations", with_("recommendations", "state_version", 1.5), "state_version"),
    ("dead-letters", with_("dead-letters", "partition", -1), "partition"),
    ("dead-letters", with_("dead-letters", "raw_encoding", "latin1"), "raw_encoding"),
    ("dead-letters", with_("dead-letters", "key", 5), "key"),
    ("dead-letters", with_("dead-letters", "reason", "Schema Violation"), "reason"),
    ("ranking-profiles", with_("ranking-profiles", "version", 0), "version"),
    ("ranking-profiles", with_("ranking-profiles", "name", "a@b"), "name"),
    ("ranking-profiles", with_("ranking-profiles", "weights.dense", "high"), "weights.dense"),
    ("ranking-profiles", with_("ranking-profiles", "filters.returned", 1), "filters.returned"),
    (
        "ranking-profiles",
        with_("ranking-profiles", "boosts", [{"feature": "deal"}]),
        "boosts[0].factor",
    ),
    (
        "ranking-profiles",
        with_("ranking-profiles", "buries", [{"feature": 1, "factor": 0.5}]),
        "buries[0].feature",
    ),
    ("ranking-profiles", with_("ranking-profiles", "pins", [""]), "pins[0]"),
    (
        "ranking-profiles",
        with_("ranking-profiles", "diversity.max_per_category", 0),
        "diversity.max_per_category",
    ),
    ("ranking-profiles", with_("ranking-profiles", "feeds", []), "feeds"),
    ("dataset-line", example("clicks"), "topic"),
    ("dataset-line", dict(example("clicks"), topic="recommendations"), "topic"),
    ("dataset-line", dict(example("clicks"), topic="dwell"), "dwell_ms"),
    (
        "dataset-line",
        {"topic": "stock", "event_id": "e", "item_id": "i", "ts": -1, "available": 1},
        "ts",
    ),
    ("dataset-line", {"topic": "catalog", "item_id": "i"}, "ts"),
]


@pytest.mark.parametrize(("name", "obj"), VALID)
def test_valid_messages(validators: Validators, name: str, obj: dict[str, Any]) -> None:
    assert check(validators, name, obj) is None


@pytest.mark.parametrize(("name", "obj", "field"), INVALID)
def test_invalid_messages_name_the_field(
    validators: Validators, name: str, obj: dict[str, Any], field: str
) -> None:
    err = check(validators, name, obj)
    assert err is not None
    assert err.path == field, str(err)
    assert str(err).startswith(f"{name}: field '{field}' ") and "\n" not in str(err)


# --- the module's behaviour ------------------------------------------------------------------


def test_validation_does_not_mutate_the_message(validators: Validators) -> None:
    for name in SCHEMA_NAMES:
        obj = example(name)
        before = json.dumps(obj, sort_keys=True)
        validators.validate(name, obj)
        assert json.dumps(obj, sort_keys=True) == before


def test_validator_function_and_names(validators: Validators) -> None:
    assert validators.names == SCHEMA_NAMES and "clicks" in validators
    check_clicks = validators.validator("clicks")
    check_clicks(example("clicks"))
    with pytest.raises(SchemaError, match="'ts'"):
        check_clicks(with_("clicks", "ts", -1))
    with pytest.raises(KeyError, match="nope"):
        validators.validate("nope", {})


def test_schema_error_is_a_value_error() -> None:
    err = SchemaError("clicks", "ts", "must be integer", "type")
    assert isinstance(err, ValueError) and str(err) == "clicks: field 'ts' must be integer"


def test_load_schema_refuses_paths() -> None:
    with pytest.raises(ValueError):
        load_schema("../pyproject")


def test_schemas_dir_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("clicks", "dataset-line", *INPUT_SCHEMAS):
        shutil.copy(schemas_dir() / f"{name}.schema.json", tmp_path)
    stricter = load_schema("clicks", tmp_path)
    stricter["properties"]["ts"] = {"type": "integer", "minimum": 10}
    (tmp_path / "clicks.schema.json").write_text(json.dumps(stricter))
    monkeypatch.setenv("RECSTREAM_SCHEMAS_DIR", str(tmp_path))
    assert schemas_dir() == tmp_path
    local = Validators(names=("clicks", "dataset-line"))
    with pytest.raises(SchemaError, match="'ts'"):
        local.validate("dataset-line", dict(example("clicks"), ts=5, topic="clicks"))


def test_references_outside_the_folder_are_refused(tmp_path: Path) -> None:
    remote = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "recstream/x",
        "$ref": "https://example.com/evil.json",
    }
    (tmp_path / "x.schema.json").write_text(json.dumps(remote))
    with pytest.raises(Exception, match="outside the schemas folder"):
        Validators(names=("x",), directory=tmp_path)
