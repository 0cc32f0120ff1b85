"""Events the users module publishes, and the one it consumes itself.

The password-reset e-mail is sent by a consumer of the users module's own event, so the
code is mailed only after the request's transaction committed. The notifications module
takes this over when it lands (PASSWORD_RESET_OTP).
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from tienda.platform.db import UnitOfWork
from tienda.platform.events import Consumer, Event
from tienda.platform.mail import Mailer

USER_REGISTERED = "user.registered"
USER_UPDATED = "user.updated"
PASSWORD_CHANGED = "user.password_changed"
PASSWORD_RESET_REQUESTED = "user.password_reset_requested"

_templates = Environment(loader=PackageLoader("tienda.users", "templates"), autoescape=select_autoescape(["html"]))


def consumers(mailer: Mailer) -> list[Consumer]:
    async def send_reset_code(event: Event, _uow: UnitOfWork) -> None:
        data: dict[str, Any] = {
            "full_name": event.payload.get("fullName"),
            "code": event.payload["code"],
            "minutes": event.payload.get("minutes", 10),
        }
        await mailer.send(
            to=event.payload["email"],
            subject=f"Your Tienda password reset code: {data['code']}",
            text=_templates.get_template("password_reset.txt").render(**data),
            html=_templates.get_template("password_reset.html").render(**data),
        )

    return [
        Consumer(
            name="users.password_reset_mail",
            module="users",
            event_types=(PASSWORD_RESET_REQUESTED,),
            handler=send_reset_code,
        )
    ]
