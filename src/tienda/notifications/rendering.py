"""The text of each notification, from the Jinja2 templates under `templates/<TYPE>/`:
`subject.txt`, `email.txt` and `email.html` (autoescaped) for e-mail, `sms.txt` for SMS."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from tienda.notifications.domain import Channel, NotificationType, Payload

_templates = Environment(
    loader=PackageLoader("tienda.notifications", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    # The templates are the package's own files: read once per process, as its code is (Jinja
    # would otherwise look at each template's file on every render to see whether it changed).
    auto_reload=False,
)


def money(amount: Decimal, currency: str = "INR") -> str:
    return f"{currency} {amount:,.2f}"


_templates.filters["money"] = money


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None


def render(kind: NotificationType, channel: Channel, payload: Payload) -> Rendered:
    context = {"p": payload, "type": kind.value}
    folder = kind.value
    if channel is Channel.SMS:
        text = _templates.get_template(f"{folder}/sms.txt").render(context)
        return Rendered(subject="", text=" ".join(text.split()), html=None)
    subject = _templates.get_template(f"{folder}/subject.txt").render(context)
    return Rendered(
        subject=" ".join(subject.split()),
        text=_templates.get_template(f"{folder}/email.txt").render(context),
        html=_templates.get_template(f"{folder}/email.html").render(context),
    )
