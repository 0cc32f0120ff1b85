"""Domain errors of the users module."""

from __future__ import annotations

from tienda.platform.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized


class EmailTaken(Conflict):
    code = "EMAIL_TAKEN"
    message = "An account with this e-mail already exists"


class InvalidCredentials(Unauthorized):
    code = "INVALID_CREDENTIALS"
    message = "Invalid email or password"


class AccountDisabled(Forbidden):
    code = "ACCOUNT_DISABLED"
    message = "This account is disabled"


class UserNotFound(NotFound):
    code = "USER_NOT_FOUND"
    message = "User not found"


class AddressNotFound(NotFound):
    code = "ADDRESS_NOT_FOUND"
    message = "Address not found"


class AddressLimitReached(Conflict):
    code = "ADDRESS_LIMIT"
    message = "Address limit reached"


class DefaultAddressRequired(Conflict):
    code = "DEFAULT_ADDRESS_REQUIRED"
    message = "The default address cannot be unset; make another address the default instead"


class PasswordMismatch(BadRequest):
    code = "PASSWORD_MISMATCH"
    message = "Old password does not match"


class RecordedError:
    """Marks an error whose bookkeeping (a revoked token family, a counted try) must be
    committed even though the request fails."""


class InvalidRefreshToken(Unauthorized):
    code = "INVALID_REFRESH_TOKEN"
    message = "Invalid or expired refresh token"


class RefreshTokenReused(RecordedError, Unauthorized):
    code = "REFRESH_TOKEN_REUSED"
    message = "Refresh token was already used; all sessions from it are revoked"


class InvalidResetCode(RecordedError, BadRequest):
    code = "INVALID_RESET_CODE"
    message = "Invalid or expired code"
