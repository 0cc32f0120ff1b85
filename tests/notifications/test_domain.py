"""Pure rules: channels per type, the backoff, what makes two notifications one, masking."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tienda.notifications.domain import (
    Channel,
    NotificationType,
    channels_for,
    dedup_key,
    masked,
    retry_delay,
)

T = NotificationType


class TestChannels:
    @pytest.mark.parametrize("kind", [T.ORDER_CONFIRMATION, T.ORDER_SHIPPED, T.ORDER_DELIVERED, T.PASSWORD_RESET_OTP])
    def test_types_with_an_sms_text_add_sms_for_a_phone(self, kind: NotificationType) -> None:
        assert channels_for(kind, has_phone=True) == [Channel.EMAIL, Channel.SMS]
        assert channels_for(kind, has_phone=False) == [Channel.EMAIL]

    @pytest.mark.parametrize("kind", [T.ORDER_CANCELLED, T.WELCOME, T.LOW_STOCK])
    def test_the_others_are_email_only(self, kind: NotificationType) -> None:
        assert channels_for(kind, has_phone=True) == [Channel.EMAIL]


class TestBackoff:
    def test_doubles_from_the_base_after_each_failed_attempt(self) -> None:
        assert [retry_delay(n, 30) for n in (1, 2, 3, 4)] == [timedelta(seconds=s) for s in (30, 60, 120, 240)]

    def test_never_waits_more_than_a_day(self) -> None:
        assert retry_delay(40, 30) == timedelta(days=1)


class TestDedupKey:
    def test_one_per_source_channel_and_recipient(self) -> None:
        key = dedup_key("event:1", Channel.EMAIL, "asha@example.com")
        assert key == dedup_key("event:1", Channel.EMAIL, "Asha@Example.com")
        assert len(key) == 64
        assert key != dedup_key("event:2", Channel.EMAIL, "asha@example.com")
        assert key != dedup_key("event:1", Channel.SMS, "asha@example.com")
        assert key != dedup_key("event:1", Channel.EMAIL, "ravi@example.com")


def test_reset_codes_are_masked_and_nothing_else() -> None:
    assert masked("PASSWORD_RESET_OTP", {"code": "482913", "minutes": 10}) == {"code": "******", "minutes": 10}
    assert masked("ORDER_SHIPPED", {"code": "X1"}) == {"code": "X1"}
