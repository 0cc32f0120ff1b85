"""DTOs of the users service (SEED.md 5.1), camelCase on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Self

import phonenumbers
from pydantic import AfterValidator, EmailStr, Field, StringConstraints, field_validator, model_validator

from tienda.platform.auth import Role
from tienda.platform.schemas import ReadSchema, Schema, examples

DEFAULT_PHONE_REGION = "IN"


def _phone(value: str) -> str:
    try:
        parsed = phonenumbers.parse(value, DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException as exc:
        raise ValueError("not a phone number") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


Phone = Annotated[
    str,
    StringConstraints(min_length=3, max_length=32),
    AfterValidator(_phone),
    Field(
        description="Any common notation; national numbers are read as Indian. Stored as E.164.",
        examples=["9876543210"],
    ),
]
Password = Annotated[str, StringConstraints(min_length=8, max_length=128, strip_whitespace=False)]
Email = Annotated[EmailStr, StringConstraints(max_length=255)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=255)]


class RegisterRequest(Schema):
    """UserRegisterDTO. The public id is assigned by the server; a `userId` sent here is ignored."""

    user_id: str | None = Field(default=None, max_length=64, description="Ignored: ids are server-assigned.")
    email: Email
    password: Password
    full_name: Name | None = None
    phone: Phone | None = None

    model_config = Schema.model_config | {
        "json_schema_extra": {
            "examples": [
                {
                    "email": "dipankar@example.com",
                    "password": "P@ssw0rd",
                    "fullName": "Dipankar Ghosh",
                    "phone": "9876543210",
                }
            ]
        }
    }


class RegisterResponse(ReadSchema):
    model_config = ReadSchema.model_config | {
        "json_schema_extra": examples({"userId": "u_3kq7x2m9p4ab", "message": "User registered"})
    }

    user_id: str = Field(examples=["u_3kq7x2m9p4ab"])
    message: str = Field(examples=["User registered"])


class LoginRequest(Schema):
    email: Annotated[str, StringConstraints(min_length=3, max_length=255)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=128, strip_whitespace=False)]

    model_config = Schema.model_config | {
        "json_schema_extra": {"examples": [{"email": "dipankar@example.com", "password": "P@ssw0rd"}]}
    }


class TokenPair(ReadSchema):
    model_config = ReadSchema.model_config | {
        "json_schema_extra": examples(
            {
                "accessToken": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1XzNrcTd4Mm05cDRhYiJ9.sig",
                "refreshToken": "eR7xQoHDjQU8GfpofPINoZ0O_-V9QZ4h-BjQR6_mDNQ",
                "expiresIn": 900,
                "tokenType": "Bearer",
                "userId": "u_3kq7x2m9p4ab",
            }
        )
    }

    access_token: str
    refresh_token: str
    expires_in: int = Field(description="Seconds until the access token expires.", examples=[900])
    token_type: str = "Bearer"
    user_id: str


class RefreshRequest(Schema):
    model_config = Schema.model_config | {
        "json_schema_extra": examples({"refreshToken": "eR7xQoHDjQU8GfpofPINoZ0O_-V9QZ4h-BjQR6_mDNQ"})
    }

    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=512)]


class LogoutRequest(Schema):
    model_config = Schema.model_config | {
        "json_schema_extra": examples({"refreshToken": "eR7xQoHDjQU8GfpofPINoZ0O_-V9QZ4h-BjQR6_mDNQ"}, {})
    }

    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = Field(
        default=None, description="Revokes this token's family; without it, every session of the user ends."
    )


class ForgotPasswordRequest(Schema):
    model_config = Schema.model_config | {"json_schema_extra": examples({"email": "dipankar@example.com"})}

    email: Annotated[str, StringConstraints(min_length=3, max_length=255)]


class ResetPasswordRequest(Schema):
    """Either `{userId, oldPassword, newPassword}` (signed in: self, or an admin who may omit
    `oldPassword`) or `{email, otp, newPassword}` with the code from forgot-password."""

    user_id: str | None = Field(default=None, max_length=64)
    old_password: Annotated[str, StringConstraints(max_length=128, strip_whitespace=False)] | None = None
    email: Annotated[str, StringConstraints(min_length=3, max_length=255)] | None = None
    otp: Annotated[str, StringConstraints(pattern=r"^\d{6}$")] | None = None
    new_password: Password

    @model_validator(mode="after")
    def _one_shape(self) -> Self:
        by_user = self.user_id is not None
        by_code = self.email is not None or self.otp is not None
        if by_user == by_code:
            raise ValueError("send either userId (with oldPassword) or email with otp")
        if by_code and (self.email is None or self.otp is None):
            raise ValueError("email and otp are both required for a code reset")
        return self

    model_config = Schema.model_config | {
        "json_schema_extra": {
            "examples": [
                {"userId": "u_3kq7x2m9p4ab", "oldPassword": "P@ssw0rd", "newPassword": "N3w-Passw0rd"},
                {"email": "dipankar@example.com", "otp": "123456", "newPassword": "N3w-Passw0rd"},
            ]
        }
    }


class UserRead(ReadSchema):
    model_config = ReadSchema.model_config | {
        "json_schema_extra": examples(
            {
                "userId": "u_3kq7x2m9p4ab",
                "email": "dipankar@example.com",
                "fullName": "Dipankar Ghosh",
                "phone": "+919876543210",
                "role": "USER",
                "isActive": True,
                "createdAt": "2026-11-25T18:05:07Z",
                "updatedAt": "2026-11-25T18:05:07Z",
            }
        )
    }

    user_id: str
    email: str
    full_name: str | None
    phone: str | None
    role: Role
    is_active: bool
    created_at: datetime
    updated_at: datetime


class UserUpdate(Schema):
    """Fields a user may change on their profile; `role` and `isActive` are for admins."""

    model_config = Schema.model_config | {
        "json_schema_extra": examples({"fullName": "Dipankar G.", "phone": "+919876543210"}, {"isActive": False})
    }

    full_name: Name | None = None
    phone: Phone | None = None
    role: Role | None = None
    is_active: bool | None = None

    @field_validator("role", "is_active")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Omitted means "leave as is"; an explicit null would violate NOT NULL (a 500).
        if value is None:
            raise ValueError("cannot be null")
        return value


Line = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Short = Annotated[str, StringConstraints(min_length=1, max_length=100)]
PostalCode = Annotated[str, StringConstraints(min_length=2, max_length=20, pattern=r"^[A-Za-z0-9 -]+$")]
Label = Annotated[str, StringConstraints(min_length=1, max_length=50)]


class AddressCreate(Schema):
    label: Label | None = Field(default=None, examples=["home"])
    line1: Line
    line2: Line | None = None
    city: Short
    state: Short | None = None
    postal_code: PostalCode
    country: Short = Field(examples=["IN"])
    phone: Phone | None = None
    is_default: bool = Field(default=False, description="The first address is always the default.")

    model_config = Schema.model_config | {
        "json_schema_extra": {
            "examples": [
                {
                    "label": "home",
                    "line1": "12 MG Road",
                    "city": "Bengaluru",
                    "state": "Karnataka",
                    "postalCode": "560001",
                    "country": "IN",
                    "phone": "9876543210",
                    "isDefault": True,
                }
            ]
        }
    }


class AddressUpdate(Schema):
    """Only the fields sent change. `isDefault: true` makes it the default; the default
    cannot be unset directly (make another address the default instead)."""

    model_config = Schema.model_config | {"json_schema_extra": examples({"line2": "Flat 4B"}, {"isDefault": True})}

    label: Label | None = None
    line1: Line | None = None
    line2: Line | None = None
    city: Short | None = None
    state: Short | None = None
    postal_code: PostalCode | None = None
    country: Short | None = None
    phone: Phone | None = None
    is_default: bool | None = None

    @field_validator("line1", "city", "postal_code", "country", "is_default")
    @classmethod
    def _required_stay_set(cls, value: object) -> object:
        # Runs only for fields sent, so the error names the field that was sent as null.
        if value is None:
            raise ValueError("cannot be null")
        return value


class AddressRead(ReadSchema):
    model_config = ReadSchema.model_config | {
        "json_schema_extra": examples(
            {
                "addressId": "adr_9f2k3m4n5p6q",
                "label": "home",
                "line1": "12 MG Road",
                "line2": None,
                "city": "Bengaluru",
                "state": "Karnataka",
                "postalCode": "560001",
                "country": "IN",
                "phone": "+919876543210",
                "isDefault": True,
                "createdAt": "2026-11-25T18:05:07Z",
            }
        )
    }

    address_id: str
    label: str | None
    line1: str
    line2: str | None
    city: str
    state: str | None
    postal_code: str
    country: str
    phone: str | None
    is_default: bool
    created_at: datetime
