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
            ref = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
            assert schemas[ref].get("examples"), f"{method.upper()} {path}: {ref} has no example"
