"""Payments: one payment per order through a gateway (sandbox, Razorpay, Stripe), its signed
webhooks, and refunds through the same gateway."""
