"""Domain errors of notifications."""

from __future__ import annotations

from tienda.platform.errors import BadRequest, Conflict, NotFound


class NotificationNotFound(NotFound):
    code = "NOTIFICATION_NOT_FOUND"
    message = "No such notification"


class UserNotFound(NotFound):
    code = "USER_NOT_FOUND"
    message = "User not found"


class UserRequired(BadRequest):
    code = "VALIDATION_FAILED"
    message = "userId is required for this type of notification"


class ChannelNotOffered(BadRequest):
    code = "CHANNEL_NOT_SUPPORTED"
    message = "This type of notification is not sent on that channel"


class NoPhoneNumber(Conflict):
    code = "NO_PHONE_NUMBER"
    message = "The user has no phone number to send an SMS to"


class NoAdmins(Conflict):
    code = "NO_RECIPIENTS"
    message = "There is no active admin to send this to"
