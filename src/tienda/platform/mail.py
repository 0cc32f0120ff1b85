"""Outgoing e-mail: SMTP in production, `.eml` files under `<data_dir>/mail` in dev."""

from __future__ import annotations

import asyncio
import smtplib
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit


class Mailer(Protocol):
    async def send(self, *, to: str, subject: str, text: str, html: str | None = None) -> str: ...


def build_message(*, sender: str, to: str, subject: str, text: str, html: str | None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain="tienda.local")
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


class FileMailer:
    """Writes each message to a file so a developer can open it."""

    def __init__(self, directory: Path, sender: str) -> None:
        self.directory = directory
        self.sender = sender

    async def send(self, *, to: str, subject: str, text: str, html: str | None = None) -> str:
        message = build_message(sender=self.sender, to=to, subject=subject, text=text, html=html)
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.eml"
        path = self.directory / name
        path.write_bytes(bytes(message))
        return str(message["Message-ID"])


class SmtpMailer:
    """Plain SMTP (with STARTTLS for `smtp+starttls://`, TLS for `smtps://`)."""

    def __init__(self, url: str, sender: str, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        self.scheme = parts.scheme
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (465 if parts.scheme == "smtps" else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.sender = sender
        self.timeout = timeout

    def _send_sync(self, message: EmailMessage) -> None:
        smtp_class = smtplib.SMTP_SSL if self.scheme == "smtps" else smtplib.SMTP
        with smtp_class(self.host, self.port, timeout=self.timeout) as smtp:
            if self.scheme == "smtp+starttls":
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)

    async def send(self, *, to: str, subject: str, text: str, html: str | None = None) -> str:
        message = build_message(sender=self.sender, to=to, subject=subject, text=text, html=html)
        await asyncio.to_thread(self._send_sync, message)
        return str(message["Message-ID"])
