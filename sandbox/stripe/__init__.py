"""A local Stripe API (Checkout, subscriptions, invoices, refunds, events, signed webhooks) for the real
stripe-python client."""

from sandbox.stripe.api import RequestRecord
from sandbox.stripe.billing import DEFAULT_API_VERSION
from sandbox.stripe.errors import StripeError
from sandbox.stripe.server import DEFAULT_API_KEY, StripeEmulator
from sandbox.stripe.webhooks import Delivery, WebhookEndpoint, signature_header

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_API_VERSION",
    "Delivery",
    "RequestRecord",
    "StripeEmulator",
    "StripeError",
    "WebhookEndpoint",
    "signature_header",
]
