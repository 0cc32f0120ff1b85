"""Builds the payments module's services from the platform, once per process."""

from __future__ import annotations

from tienda.payments.providers.base import PaymentProvider
from tienda.payments.providers.sandbox import SandboxProvider
from tienda.payments.service import PaymentService
from tienda.platform.jobs import Job
from tienda.platform.runtime import Platform

SANDBOX_PAGE = "/api/v1/payments/sandbox"


def providers(platform: Platform) -> dict[str, PaymentProvider]:
    s = platform.settings
    found: dict[str, PaymentProvider] = {}
    if s.sandbox_enabled:
        base = (s.public_base_url or "").rstrip("/")
        found["sandbox"] = SandboxProvider(
            secret=s.sandbox_secret(), clock=platform.clock, page_base=base + SANDBOX_PAGE
        )
    if s.razorpay_key_id and s.razorpay_key_secret and s.razorpay_webhook_secret:
        from tienda.payments.providers.razorpay import RazorpayProvider

        found["razorpay"] = RazorpayProvider(
            key_id=s.razorpay_key_id,
            key_secret=s.razorpay_key_secret.get_secret_value(),
            webhook_secret=s.razorpay_webhook_secret.get_secret_value(),
            api_base=s.razorpay_api_base,
        )
    if s.stripe_secret_key and s.stripe_webhook_secret:
        from tienda.payments.providers.stripe import StripeProvider

        found["stripe"] = StripeProvider(
            secret_key=s.stripe_secret_key.get_secret_value(),
            webhook_secret=s.stripe_webhook_secret.get_secret_value(),
            api_base=s.stripe_api_base,
            default_return_url=s.payment_return_url,
        )
    return found


def payment_service(platform: Platform) -> PaymentService:
    return platform.service(
        "payments",
        lambda p: PaymentService(
            db=p.db("payments"), providers=providers(p), default_provider=p.settings.payment_provider, clock=p.clock
        ),
    )


def payment_jobs(platform: Platform) -> list[Job]:
    async def retry_refunds() -> int:
        return await payment_service(platform).retry_refunds()

    return [
        Job(name="payments.retry_refunds", interval_seconds=platform.settings.refund_retry_seconds, run=retry_refunds)
    ]
