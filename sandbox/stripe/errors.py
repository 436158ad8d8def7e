"""Stripe's error bodies: ``{"error": {"type": ..., "message": ..., "param": ..., "code": ...}}``."""

from __future__ import annotations

from typing import Any

DOCS = "https://stripe.com/docs/error-codes/"


class StripeError(Exception):
    """An API error, rendered with Stripe's error JSON shape and HTTP status."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.param = param
        self.code = code

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": self.type}
        if self.param is not None:
            error["param"] = self.param
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = DOCS + self.code.replace("_", "-")
        if request_id is not None:
            error["request_log_url"] = f"https://dashboard.stripe.com/test/logs/{request_id}"
        return {"error": error}


def invalid(message: str, param: str | None = None, code: str | None = None) -> StripeError:
    return StripeError(message, param=param, code=code)


def missing_param(param: str) -> StripeError:
    return StripeError(f"Missing required param: {param}.", param=param, code="parameter_missing")


def unknown_param(param: str) -> StripeError:
    return StripeError(f"Received unknown parameter: {param}", param=param, code="parameter_unknown")


def no_such(kind: str, object_id: str, param: str = "id") -> StripeError:
    return StripeError(f"No such {kind}: '{object_id}'", status=404, param=param, code="resource_missing")


def no_api_key() -> StripeError:
    return StripeError(
        "You did not provide an API key. You need to provide your API key in the Authorization header, "
        "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#"
        "authentication for details, or we can help at https://support.stripe.com/.",
        status=401,
    )


def invalid_api_key(key: str) -> StripeError:
    shown = key[:8] + "*" * max(len(key) - 12, 0) + key[-4:] if len(key) > 12 else key
    return StripeError(f"Invalid API Key provided: {shown}", status=401)


def unrecognized_url(method: str, path: str) -> StripeError:
    return StripeError(
        f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help at "
        "https://support.stripe.com/.",
        status=404,
    )


def idempotency_params(key: str) -> StripeError:
    return StripeError(
        "Keys for idempotent requests can only be used with the same parameters they were first used with. "
        f"Try using a key other than '{key}' if you meant to execute a different request.",
        type="idempotency_error",
    )


def idempotency_endpoint(key: str, first: str, now: str) -> StripeError:
    return StripeError(
        "Keys for idempotent requests can only be used for the same endpoint they were first used for "
        f"('{first}' vs '{now}'). Try using a key other than '{key}' if you meant to execute a different "
        "request.",
        type="idempotency_error",
    )
