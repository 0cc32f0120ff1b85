"""Events the users module publishes (the notifications module mails the welcome and the
password-reset code from them)."""

from __future__ import annotations

USER_REGISTERED = "user.registered"
USER_UPDATED = "user.updated"
PASSWORD_CHANGED = "user.password_changed"
PASSWORD_RESET_REQUESTED = "user.password_reset_requested"
