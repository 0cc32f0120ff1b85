"""Routes of payments (SEED.md 5.6), and the sandbox gateway's page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from tienda.payments.errors import InvalidWebhookSignature, PaymentMismatch, PaymentNotFound
from tienda.payments.schemas import PaymentInitiate, PaymentInitiated, PaymentRead, WebhookReceived
from tienda.payments.service import PaymentService
from tienda.payments.wiring import SANDBOX_PAGE, payment_service
from tienda.platform.auth import CurrentUser
from tienda.platform.db import UnitOfWork
from tienda.platform.deps import unit_of_work
from tienda.platform.errors import ErrorDetail, error_responses
from tienda.platform.web import absolute_url

payments = APIRouter(prefix="/payments", tags=["payments"])

_pages = Environment(
    loader=PackageLoader("tienda.payments", "templates"), autoescape=select_autoescape(["html"]), auto_reload=False
)


async def _payments(request: Request) -> PaymentService:
    return payment_service(request.app.state.platform)


Payments = Annotated[PaymentService, Depends(_payments)]
ReadUow = Annotated[UnitOfWork, Depends(unit_of_work("payments", readonly=True))]


def _url(request: Request, url: str | None) -> str | None:
    return absolute_url(request, url, base=request.app.state.platform.settings.public_base_url)


@payments.post(
    "/initiate",
    summary="The payment of your order: where to pay",
    description="An order placed with `paymentMethod: PAYMENT_GATEWAY` opens its payment at checkout; this "
    "returns it (asking again never opens a second). `amount` and `currency`, if sent, must be the order's.",
    response_model=PaymentInitiated,
    responses=error_responses(400, 401, 404, 409),
)
async def initiate(
    body: PaymentInitiate, request: Request, user: CurrentUser, service: Payments, uow: ReadUow
) -> PaymentInitiated:
    payment = await service.of_order(uow, order_id=body.order_id)
    if payment is None or not user.can_act_for(payment.user_id):
        raise PaymentNotFound("No payment of yours for this order (orders open their payment at checkout)")
    if (body.amount is not None and body.amount != payment.amount) or (
        body.currency is not None and body.currency != payment.currency
    ):
        raise PaymentMismatch(
            details=[
                ErrorDetail(field="body.amount", message=f"the order's payment is {payment.amount} {payment.currency}")
            ]
        )
    return PaymentInitiated(
        payment_id=payment.payment_id, payment_url=_url(request, payment.payment_url), status=payment.status
    )


@payments.post(
    "/webhook",
    summary="A gateway's webhook",
    description="Public, but only a payload signed by a configured gateway is taken (the gateway is told by its "
    "signature header: `Tienda-Signature` sandbox, `X-Razorpay-Signature`, `Stripe-Signature`). Each gateway event "
    "counts once; a capture must match the payment's amount and currency; a failure never downgrades a capture. "
    "Answers 200 once the delivery is recorded, whatever it did (`outcome`).",
    response_model=WebhookReceived,
    responses=error_responses(400, 404),
)
async def webhook(request: Request, service: Payments) -> WebhookReceived:
    name = next(
        (n for n, p in service.providers.items() if p.signature_header.lower() in request.headers),
        None,
    )
    if name is None:
        raise InvalidWebhookSignature("No signature header of a configured gateway")
    return await _receive(request, service, name)


@payments.post(
    "/webhook/{provider}",
    summary="A named gateway's webhook",
    description="As `POST /payments/webhook`, for gateways configured with one URL each.",
    response_model=WebhookReceived,
    responses=error_responses(400, 404),
)
async def provider_webhook(provider: str, request: Request, service: Payments) -> WebhookReceived:
    return await _receive(request, service, provider.lower())


async def _receive(request: Request, service: Payments, provider: str) -> WebhookReceived:
    outcome = await service.webhook(provider, dict(request.headers), await request.body())
    return WebhookReceived(outcome=outcome.outcome, payment_id=outcome.payment_id)


@payments.get(
    "/{paymentId}",
    summary="A payment's status (your own; an admin's any)",
    response_model=PaymentRead,
    responses=error_responses(401, 404),
)
async def get_payment(
    paymentId: str, request: Request, user: CurrentUser, service: Payments, uow: ReadUow
) -> PaymentRead:
    payment = await service.get(uow, payment_id=paymentId)
    if not user.can_act_for(payment.user_id):
        raise PaymentNotFound()
    read = PaymentRead.model_validate(payment)
    read.payment_url = _url(request, payment.payment_url) if payment.status == "PENDING" else None
    return read


# -- the sandbox gateway ---------------------------------------------------------------------


@payments.get(
    "/sandbox/{paymentId}",
    summary="The sandbox gateway's payment page",
    description="What `paymentUrl` opens with the sandbox gateway: the amount, and Approve / Decline buttons.",
    responses={**error_responses(404), 200: {"description": "The page", "content": {"text/html": {}}}},
)
async def sandbox_page(paymentId: str, request: Request, service: Payments, uow: ReadUow) -> HTMLResponse:
    service.provider("sandbox")
    payment = await service.get(uow, payment_id=paymentId)
    if payment.payment_provider != "sandbox":
        raise PaymentNotFound("No such sandbox payment")
    page = _pages.get_template("sandbox.html").render(payment=payment, base=str(request.url.path).rsplit("/", 1)[0])
    return HTMLResponse(page)


@payments.post(
    "/sandbox/{paymentId}/{decision}",
    summary="Approve or decline a sandbox payment",
    description="`decision` is `approve` or `decline`: the sandbox gateway sends its signed webhook, then shows "
    "the payment's page again (303).",
    status_code=status.HTTP_303_SEE_OTHER,
    responses={**error_responses(400, 404), 303: {"description": "Back to the payment's page"}},
)
async def sandbox_decide(paymentId: str, decision: str, request: Request, service: Payments) -> Response:
    if decision not in ("approve", "decline"):
        raise PaymentNotFound("Decide with /approve or /decline")
    await service.sandbox_decide(payment_id=paymentId, approve=decision == "approve")
    return RedirectResponse(str(request.url.path).rsplit("/", 1)[0], status_code=status.HTTP_303_SEE_OTHER)


__all__ = ["SANDBOX_PAGE", "payments"]
