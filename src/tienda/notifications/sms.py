"""Outgoing SMS: a small provider interface; the console provider (dev) logs the text."""

from __future__ import annotations

import uuid
from typing import Protocol

from tienda.platform.observability import get_logger
from tienda.settings import Settings

log = get_logger("tienda.sms")


class SmsSender(Protocol):
    async def send(self, *, to: str, text: str) -> str:
        """Sends `text` to the phone number `to`; returns the provider's message id."""
        ...


class ConsoleSms:
    """Writes each SMS to the log instead of a gateway, so a developer can read it."""

    async def send(self, *, to: str, text: str) -> str:
        message_id = f"console-{uuid.uuid4().hex}"
        log.info("sms_sent", to=to, text=text, message_id=message_id)
        return message_id


def sms_sender(settings: Settings) -> SmsSender:
    match settings.sms_provider:
        case "console":
            return ConsoleSms()
