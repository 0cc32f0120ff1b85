"""The e-mail as it is sent: what a mail client parses out of it is what the shop wrote."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

from tienda.platform.mail import FileMailer, build_message

LONG_LINE = "<p style='margin:0;padding:0'>" + "a long line of markup " * 8 + "</p>"


def _parsed(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def _body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None
    return str(part.get_content())


def test_text_and_html_are_the_two_parts_of_an_alternative_as_written() -> None:
    text = "Hello Ana,\n\nOrder ord_20261126_0001 is confirmed.\n"
    html = f"<html><body>{LONG_LINE}<p>Order ord_20261126_0001</p></body></html>\n"
    raw = bytes(
        build_message(
            sender="Tienda <shop@example.com>", to="ana@example.com", subject="Confirmed", text=text, html=html
        )
    )
    message = _parsed(raw)
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert _body(message, "plain") == text
    assert _body(message, "html") == html
    assert str(message["From"]) == "Tienda <shop@example.com>"
    assert str(message["To"]) == "ana@example.com"
    assert str(message["Subject"]) == "Confirmed"
    assert message["Date"] is not None
    assert message["Message-ID"].endswith("@tienda.local>")
    assert b"\nOrder ord_20261126_0001 is confirmed." in raw  # short ASCII lines travel as they are
    assert max(len(line) for line in raw.splitlines()) <= 78  # the long line is quoted-printable


def test_words_beyond_ascii_survive_in_headers_names_and_bodies() -> None:
    subject = "Tu pedido está confirmado, ¡gracias! " * 3
    text = "Hola José — tu pedido ord_20261126_0002 está confirmado.\n"
    raw = bytes(
        build_message(
            sender="Tienda Ñandú <no-reply@example.com>",
            to="José Núñez <jose@example.com>",
            subject=subject,
            text=text,
            html=None,
        )
    )
    assert raw.isascii()  # every header and body encoded for any mail server
    message = _parsed(raw)
    assert message.get_content_type() == "text/plain"
    assert str(message["Subject"]) == subject
    assert message["From"].addresses[0].display_name == "Tienda Ñandú"
    assert message["To"].addresses[0].addr_spec == "jose@example.com"
    assert message["To"].addresses[0].display_name == "José Núñez"
    assert _body(message, "plain") == text


async def test_the_file_mailer_writes_the_message_it_names(tmp_path: Path) -> None:
    mailer = FileMailer(tmp_path / "mail", "Tienda <shop@example.com>")
    message_id = await mailer.send(to="ana@example.com", subject="Hi", text="Hello\n", html="<p>Hello</p>\n")
    [path] = list((tmp_path / "mail").glob("*.eml"))
    message = _parsed(path.read_bytes())
    assert message["Message-ID"] == message_id
    assert _body(message, "plain") == "Hello\n"
    assert _body(message, "html") == "<p>Hello</p>\n"


def test_headers_are_written_as_compat32_writes_them() -> None:
    """Headers that need no folding or encoding skip `email.header.Header`; the bytes are the
    ones the standard compat32 policy writes, for those and for the ones it folds or encodes."""
    subjects = [
        "Confirmed",
        "  spaced\tout  ",
        "Your Tienda order ord_20261127_0001 is confirmed",
        "A subject long enough that it has to be folded over more than one line of the message head",
        "Ihre Bestellung ist bestätigt",
        "",
    ]
    for subject in subjects:
        message = build_message(
            sender="Tienda Støre <shop@example.com>", to="ana@example.com", subject=subject, text="Hi", html="<p>Hi</p>"
        )
        assert message.as_bytes() == message.as_bytes(policy=email.policy.compat32), subject
