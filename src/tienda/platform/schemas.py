"""The base of every DTO: camelCase on the wire, snake_case in Python, unknown fields refused."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class Schema(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        from_attributes=True,
        str_strip_whitespace=True,
        extra="forbid",
    )


class ReadSchema(Schema):
    model_config = ConfigDict(extra="ignore")


def examples(*values: dict[str, Any]) -> dict[str, Any]:
    """Pass as `json_schema_extra=` to document a DTO with example payloads in OpenAPI."""
    return {"examples": list(values)}


WIRE = ConfigDict(alias_generator=to_camel, populate_by_name=True)
"""For the dataclasses of a module's client protocol (`@with_config(WIRE)`): camelCase when
they cross to another service, built and compared as plain dataclasses in process."""


class Message(Schema):
    model_config = ConfigDict(json_schema_extra=examples({"message": "Password updated"}))

    message: str
