"""The committed API document matches the app, and documents every route fully."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tienda.cli import openapi_yaml

COMMITTED = Path(__file__).parents[2] / "docs" / "openapi.yaml"


@pytest.fixture(scope="module")
def document() -> dict[str, object]:
    return dict(yaml.safe_load(openapi_yaml()))


def test_the_committed_document_is_the_apps() -> None:
    assert COMMITTED.read_text() == openapi_yaml(), "docs/openapi.yaml drifted from the app: run `make openapi`"


def test_every_operation_has_a_summary_and_documents_its_errors(
    document: dict[str, dict[str, dict[str, dict[str, object]]]],
) -> None:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), f"{method.upper()} {path} has no summary"
            if path.startswith("/api/"):
                errors = [code for code in operation["responses"] if str(code)[0] in "45"]
                assert errors, f"{method.upper()} {path} documents no error response"
                for code in errors:
                    schema = operation["responses"][code]["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorEnvelope"}, f"{method.upper()} {path} {code}"


def test_request_bodies_carry_examples(document: dict[str, dict[str, object]]) -> None:
    schemas = document["components"]["schemas"]  # type: ignore[index]
    for path, operations in document["paths"].items():  # type: ignore[attr-defined]
        for method, operation in operations.items():
            body = operation.get("requestBody")
            if body is None:
                continue
            schema = body["content"]["application/json"]["schema"]
            # An optional body is `anyOf: [$ref, null]`.
            ref = (schema.get("$ref") or schema["anyOf"][0]["$ref"]).rsplit("/", 1)[-1]
            assert schemas[ref].get("examples"), f"{method.upper()} {path}: {ref} has no example"


def test_success_and_error_bodies_carry_examples(document: dict[str, dict[str, object]]) -> None:
    schemas = document["components"]["schemas"]  # type: ignore[index]
    for path, operations in document["paths"].items():  # type: ignore[attr-defined]
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                ref = schema.get("$ref") or schema.get("items", {}).get("$ref")
                if ref is None:
                    continue
                name = ref.rsplit("/", 1)[-1]
                if name.startswith("Page_"):
                    item = schemas[name]["properties"]["items"]["items"]["$ref"].rsplit("/", 1)[-1]
                    name = item
                assert schemas[name].get("examples"), f"{method.upper()} {path} {status}: {name} has no example"
