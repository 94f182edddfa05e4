"""JSON Schema validation of messages, compiled once with fastjsonschema.

The files in the repository's top-level ``schemas/`` folder are the source of truth for every
topic's messages (see DESIGN.md, "Topics and messages"). Ingestion decodes each record once (orjson)
and hands the decoded object here, so this module never parses JSON text on the hot path: it
compiles every schema to Python code once and calls that code per message.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import fastjsonschema

from stream.settings import CONTROL_TOPICS, ITEM_TOPICS, USER_TOPICS

SCHEMAS_ENV = "RECSTREAM_SCHEMAS_DIR"

INPUT_SCHEMAS: tuple[str, ...] = USER_TOPICS + ITEM_TOPICS + CONTROL_TOPICS
SCHEMA_NAMES: tuple[str, ...] = (
    *INPUT_SCHEMAS,
    "recommendations",
    "dead-letters",
    "ranking-profiles",
    "dataset-line",
)

# The files use relative ids ("recstream/<name>") and refer to each other relatively
# ("$ref": "clicks"). fastjsonschema 2.x joins relative base URIs repeatedly
# ("recstream/recstream/clicks"), so for compiling only we rebase the ids onto this absolute,
# never-resolvable URI and serve every reference from the folder: no schema is fetched remotely.
_COMPILE_BASE = "https://recstream.invalid/schemas/"
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_MAX_DETAIL = 200


def schemas_dir() -> Path:
    """Folder of the ``*.schema.json`` files: $RECSTREAM_SCHEMAS_DIR or the repo's ``schemas/``."""
    override = os.environ.get(SCHEMAS_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "schemas"


def load_schema(name: str, directory: Path | None = None) -> dict[str, Any]:
    """Read one schema (``<name>.schema.json``) as a dict, unchanged."""
    if not _NAME_RE.match(name):
        raise ValueError(f"invalid schema name {name!r}")
    path = (directory or schemas_dir()) / f"{name}.schema.json"
    with path.open("rb") as fh:
        schema = json.load(fh)
    if not isinstance(schema, dict):
        raise ValueError(f"{path}: a schema must be a JSON object")
    return schema


class SchemaError(ValueError):
    """A message does not match its schema; ``str()`` is one line naming the field."""

    def __init__(self, schema: str, path: str, detail: str, rule: str | None = None) -> None:
        self.schema = schema
        self.path = path  # "" for the message itself, else e.g. "items[0].item_id"
        self.detail = detail
        self.rule = rule
        where = f"field '{path}'" if path else "message"
        super().__init__(f"{schema}: {where} {detail}")


def _field_path(name: str | None) -> str:
    """fastjsonschema names values ``data.items[0].item_id``; drop the ``data`` root."""
    if not name or name == "data":
        return ""
    return name[5:] if name.startswith("data.") else name.removeprefix("data")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _to_schema_error(schema: str, exc: fastjsonschema.JsonSchemaValueException) -> SchemaError:
    """Turn fastjsonschema's exception into a short message naming the offending field."""
    path = _field_path(exc.name)
    rule = exc.rule
    value = exc.value
    if rule == "required" and isinstance(value, dict):
        missing = [k for k in exc.rule_definition or () if k not in value]
        if missing:
            extra = f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else ""
            return SchemaError(schema, _join(path, missing[0]), "is required" + extra, rule)
    if rule == "additionalProperties" and isinstance(value, dict):
        known = (exc.definition or {}).get("properties", {})
        unknown = sorted(str(k) for k in value if k not in known)
        if unknown:
            return SchemaError(schema, _join(path, unknown[0]), "is not allowed", rule)
    message = exc.message or ""
    if exc.name and message.startswith(exc.name):
        message = message[len(exc.name) :]
    detail = " ".join(message.split())[:_MAX_DETAIL] or "is invalid"
    return SchemaError(schema, path, detail, rule)


def _rebased(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return {**schema, "$id": _COMPILE_BASE + name}


class Validators:
    """Every schema compiled once; ``validate(name, obj)`` checks an already-decoded message."""

    def __init__(self, names: Iterable[str] = SCHEMA_NAMES, directory: Path | None = None) -> None:
        self._dir = directory or schemas_dir()
        self._raw: dict[str, dict[str, Any]] = {}
        self._compiled: dict[str, Callable[[Any], Any]] = {}
        for name in names:
            self._compiled[name] = fastjsonschema.compile(
                _rebased(self._schema(name), name),
                handlers={"https": self._resolve, "http": self._resolve},
                use_default=False,  # never let validation mutate the message
                use_formats=False,
                detailed_exceptions=True,
            )

    def _schema(self, name: str) -> dict[str, Any]:
        if name not in self._raw:
            self._raw[name] = load_schema(name, self._dir)
        return self._raw[name]

    def _resolve(self, uri: str) -> dict[str, Any]:
        """Serve ``$ref`` targets from the schemas folder; refuse anything else (no network)."""
        base = uri.split("#", 1)[0]
        if not base.startswith(_COMPILE_BASE):
            raise ValueError(f"schema reference outside the schemas folder: {uri}")
        name = base[len(_COMPILE_BASE) :]
        return _rebased(self._schema(name), name)

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the compiled schemas."""
        return tuple(self._compiled)

    def __contains__(self, name: object) -> bool:
        return name in self._compiled

    def validate(self, name: str, obj: object) -> None:
        """Raise SchemaError if ``obj`` does not match schema ``name`` (KeyError if unknown)."""
        try:
            check = self._compiled[name]
        except KeyError:
            raise KeyError(f"unknown schema {name!r}") from None
        try:
            check(obj)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise _to_schema_error(name, exc) from None

    def validator(self, name: str) -> Callable[[object], None]:
        """A one-schema check function, to skip the name lookup in a hot loop."""
        check = self._compiled[name]

        def validate_one(obj: object) -> None:
            try:
                check(obj)
            except fastjsonschema.JsonSchemaValueException as exc:
                raise _to_schema_error(name, exc) from None

        return validate_one


@functools.lru_cache(maxsize=1)
def get_validators() -> Validators:
    """The process-wide Validators, compiled on first use (reads $RECSTREAM_SCHEMAS_DIR then)."""
    return Validators()
