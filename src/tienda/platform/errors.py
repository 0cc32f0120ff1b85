"""One exception hierarchy, mapped once to the error envelope of SEED.md section 11.

Every non-2xx response is
`{"timestamp", "status", "error", "message", "path", "code", "requestId", "details"?}`.
Domain errors subclass `AppError` in their module's `errors.py`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ErrorDetail(BaseModel):
    field: str | None = Field(default=None, description="Dotted location of the bad input, e.g. body.email.")
    message: str
    type: str | None = None


class ErrorEnvelope(BaseModel):
    """The body of every error response."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "timestamp": "2026-11-25T18:05:07Z",
                    "status": 400,
                    "error": "Bad Request",
                    "message": "Validation failed",
                    "path": "/api/v1/users/register",
                    "code": "VALIDATION_FAILED",
                    "requestId": "4ae7721f580b4a23b8d2facb658b5b52",
                    "details": [
                        {"field": "body.email", "message": "value is not a valid email address", "type": "value_error"}
                    ],
                }
            ]
        }
    )

    timestamp: datetime
    status: int
    error: str = Field(description="The HTTP reason phrase.")
    message: str
    path: str
    code: str = Field(description="A stable machine-readable code, e.g. VALIDATION_FAILED.")
    requestId: str | None = None
    details: list[ErrorDetail] | None = None


class AppError(Exception):
    status: int = 500
    code: str = "INTERNAL_ERROR"
    message: str = "Internal server error"

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        details: list[ErrorDetail] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.message
        self.code = code or self.code
        self.details = details
        self.headers = headers or {}
        super().__init__(self.message)


class BadRequest(AppError):
    status = 400
    code = "BAD_REQUEST"
    message = "Bad request"


class ValidationFailed(AppError):
    status = 400
    code = "VALIDATION_FAILED"
    message = "Validation failed"


class Unauthorized(AppError):
    status = 401
    code = "UNAUTHORIZED"
    message = "Authentication required"

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kwargs)


class Forbidden(AppError):
    status = 403
    code = "FORBIDDEN"
    message = "You are not allowed to do this"


class NotFound(AppError):
    status = 404
    code = "NOT_FOUND"
    message = "Not found"


class Conflict(AppError):
    status = 409
    code = "CONFLICT"
    message = "Conflict"


class PayloadTooLarge(AppError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"
    message = "Request body too large"


class UnsupportedMediaType(AppError):
    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"
    message = "Unsupported Content-Type"


class RateLimited(AppError):
    status = 429
    code = "RATE_LIMITED"
    message = "Too many requests"

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        self.retry_after = max(1, retry_after)
        super().__init__(message, headers={"Retry-After": str(self.retry_after)})


class ServiceUnavailable(AppError):
    status = 503
    code = "SERVICE_UNAVAILABLE"
    message = "Service unavailable"


def envelope(
    *,
    status: int,
    message: str,
    path: str,
    code: str,
    request_id: str | None = None,
    details: list[ErrorDetail] | None = None,
) -> dict[str, Any]:
    body = ErrorEnvelope(
        timestamp=datetime.now(UTC),
        status=status,
        error=HTTPStatus(status).phrase,
        message=message,
        path=path,
        code=code,
        requestId=request_id,
        details=details,
    )
    return body.model_dump(mode="json", exclude_none=True)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting the envelope for each status."""
    return {status: {"model": ErrorEnvelope, "description": HTTPStatus(status).phrase} for status in statuses}
