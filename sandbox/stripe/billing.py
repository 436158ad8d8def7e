"""The Stripe objects and their life cycle: products, prices, customers, Checkout Sessions, PaymentIntents,
charges, refunds, subscriptions, invoices and the events every change records."""

from __future__ import annotations

import calendar
import copy
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sandbox.stripe.errors import StripeError, invalid, missing_param
from sandbox.stripe.money import format_amount
from sandbox.stripe.params import (
    Params,
    check_known,
    get_array,
    get_bool,
    get_enum,
    get_hash,
    get_int,
    get_str,
    metadata_update,
)
from sandbox.stripe.store import Obj, Store, created_filter

DEFAULT_API_VERSION = "2025-09-30.clover"
INTERVALS = ("day", "week", "month", "year")
SESSION_LIFETIME = 24 * 3600
CARD = {
    "brand": "visa",
    "last4": "4242",
    "exp_month": 12,
    "exp_year": 2034,
    "country": "US",
    "funding": "credit",
}
DECLINE = {
    "code": "card_declined",
    "decline_code": "generic_decline",
    "message": "Your card was declined.",
    "type": "card_error",
}
EventHook = Callable[[Obj], None]
Pending = list[tuple[str, Obj, Mapping[str, Any] | None]]  # events to record, with their object snapshots


@dataclass
class RequestContext:
    """The API request being served, recorded on the events it causes."""

    request_id: str | None = None
    idempotency_key: str | None = None


def add_interval(anchor: int, interval: str, count: int) -> int:
    """``anchor`` moved ``count`` intervals later, months clamped to the month's last day as Stripe does."""
    start = dt.datetime.fromtimestamp(anchor, dt.UTC)
    if interval == "day":
        return int((start + dt.timedelta(days=count)).timestamp())
    if interval == "week":
        return int((start + dt.timedelta(weeks=count)).timestamp())
    months = count * (12 if interval == "year" else 1)
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return int(start.replace(year=year, month=month, day=day).timestamp())


class Billing:
    """All objects and the operations the API, the checkout page and the test controls perform on them."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], float],
        checkout_url: Callable[[str], str],
        invoice_url: Callable[[str], str],
        on_event: EventHook | None = None,
        api_version: str = DEFAULT_API_VERSION,
    ) -> None:
        self.store = store
        self.clock = clock
        self.checkout_url = checkout_url
        self.invoice_url = invoice_url
        self.on_event = on_event
        self.api_version = api_version
        self.context = RequestContext()
        self._line_items: dict[str, list[Obj]] = {}
        self._periods: dict[str, int] = {}  # subscription id -> periods started since the anchor
        self._invoice_numbers: dict[str, int] = {}
        self._session_options: dict[str, Obj] = {}
        store.expanders[("checkout.session", "line_items")] = self._expand_line_items

    def now(self) -> int:
        return int(self.clock())

    # -- events ----------------------------------------------------------------------------------------------
    def emit(self, event_type: str, obj: Obj, previous: Mapping[str, Any] | None = None) -> Obj:
        data: Obj = {"object": copy.deepcopy(obj)}
        if previous:
            data["previous_attributes"] = copy.deepcopy(dict(previous))
        event: Obj = {
            "id": self.store.new_id("evt"),
            "object": "event",
            "api_version": self.api_version,
            "created": self.now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": 0,
            "request": {"id": self.context.request_id, "idempotency_key": self.context.idempotency_key},
            "type": event_type,
        }
        self.store.add(event)
        if self.on_event is not None:
            self.on_event(event)
        return event

    def list_events(self, params: Params) -> Obj:
        check_known(
            params,
            (
                "type",
                "types",
                "created",
                "limit",
                "starting_after",
                "ending_before",
                "expand",
                "delivery_success",
            ),
        )
        items = self.store.all("event")
        event_type = get_str(params, "type")
        types = [str(t) for t in get_array(params, "types")]
        if event_type and types:
            raise invalid("You may only specify one of these parameters: type, types.", param="types")
        if event_type:
            items = [e for e in items if _type_matches(event_type, e["type"])]
        if types:
            items = [e for e in items if any(_type_matches(t, e["type"]) for t in types)]
        delivered = get_bool(params, "delivery_success")
        if delivered is not None:
            items = [e for e in items if (e["pending_webhooks"] == 0) == delivered]
        return self.store.page(created_filter(params, items), params, "/v1/events")

    # -- products and prices ---------------------------------------------------------------------------------
    def create_product(self, params: Params, prefix: str = "", emit: bool = True) -> Obj:
        allowed = (
            "name",
            "description",
            "metadata",
            "active",
            "images",
            "id",
            "default_price_data",
            "expand",
        )
        check_known(params, allowed if not prefix else ("name", "description", "metadata", "images"), prefix)
        name = get_str(params, "name", prefix, required=True)
        product_id = get_str(params, "id") if not prefix else None
        if product_id and self.store.find(product_id):
            raise invalid("Product already exists.", param="id", code="resource_already_exists")
        default = get_hash(params, "default_price_data")
        if default:
            check_known(default, ("currency", "unit_amount", "recurring", "metadata"), "default_price_data")
            _currency(default, "default_price_data")
            get_int(default, "unit_amount", "default_price_data", required=True, minimum=0)
            self._recurring(default, "default_price_data")
            metadata_update({}, default, "default_price_data")
        now = self.now()
        product: Obj = {
            "id": product_id or self.store.new_id("prod"),
            "object": "product",
            "active": get_bool(params, "active", prefix) is not False,
            "created": now,
            "default_price": None,
            "description": get_str(params, "description", prefix),
            "images": [str(i) for i in get_array(params, "images", prefix)],
            "livemode": False,
            "metadata": metadata_update({}, params, prefix),
            "name": name,
            "type": "service",
            "updated": now,
            "url": None,
        }
        self.store.add(product)
        price = self._new_price(default, "default_price_data", product["id"], emit=False) if default else None
        if price is not None:
            product["default_price"] = price["id"]
        if emit:
            self.emit("product.created", product)
        if price is not None:
            self.emit("price.created", price)
        return product

    def update_product(self, product_id: str, params: Params) -> Obj:
        product = self.store.get(product_id, "product")
        check_known(params, ("name", "description", "metadata", "active", "default_price", "expand"))
        draft = copy.deepcopy(product)
        if "name" in params:
            draft["name"] = get_str(params, "name", required=True)
        if "description" in params:
            draft["description"] = get_str(params, "description")
        if "active" in params:
            draft["active"] = bool(get_bool(params, "active"))
        if "default_price" in params:
            price_id = get_str(params, "default_price")
            if price_id is not None:
                self.store.get(price_id, "price", "default_price")
            draft["default_price"] = price_id
        draft["metadata"] = metadata_update(draft["metadata"], params)
        draft["updated"] = self.now()
        self._commit(product, draft, "product.updated")
        return product

    def list_products(self, params: Params) -> Obj:
        check_known(
            params, ("active", "ids", "created", "limit", "starting_after", "ending_before", "expand")
        )
        items = self.store.all("product")
        active = get_bool(params, "active")
        if active is not None:
            items = [p for p in items if p["active"] == active]
        ids = [str(i) for i in get_array(params, "ids")]
        if ids:
            items = [p for p in items if p["id"] in ids]
        return self.store.page(created_filter(params, items), params, "/v1/products")

    def create_price(self, params: Params) -> Obj:
        check_known(
            params,
            (
                "currency",
                "unit_amount",
                "product",
                "product_data",
                "recurring",
                "metadata",
                "nickname",
                "lookup_key",
                "active",
                "tax_behavior",
                "expand",
            ),
        )
        product_id = get_str(params, "product")
        product_data = get_hash(params, "product_data")
        if product_id and product_data:
            raise invalid(
                "You may only specify one of these parameters: product, product_data.", param="product_data"
            )
        if not product_id and not product_data:
            raise missing_param("product")
        _currency(params, "")
        get_int(params, "unit_amount", required=True, minimum=0)
        self._recurring(params, "")
        get_enum(params, "tax_behavior", ("inclusive", "exclusive", "unspecified"))
        metadata_update({}, params)
        lookup_key = get_str(params, "lookup_key")
        if lookup_key and any(p["lookup_key"] == lookup_key for p in self.store.all("price")):
            raise invalid(f"A price (`{lookup_key}`) already uses that lookup key.", param="lookup_key")
        active = get_bool(params, "active")
        if product_id:
            self.store.get(product_id, "product", "product")
        else:
            check_known(product_data, ("name", "description", "metadata", "images"), "product_data")
            get_str(product_data, "name", "product_data", required=True)
            product_id = self.create_product(product_data, "product_data")["id"]
        price = self._new_price(params, "", product_id, emit=False)
        price["lookup_key"] = lookup_key
        price["nickname"] = get_str(params, "nickname")
        price["active"] = active is not False
        self.emit("price.created", price)
        return price

    def _new_price(self, params: Params, prefix: str, product_id: str, emit: bool = True) -> Obj:
        currency = _currency(params, prefix)
        unit_amount = get_int(params, "unit_amount", prefix, required=True, minimum=0)
        assert unit_amount is not None
        recurring = self._recurring(params, prefix)
        price: Obj = {
            "id": self.store.new_id("price"),
            "object": "price",
            "active": True,
            "billing_scheme": "per_unit",
            "created": self.now(),
            "currency": currency,
            "custom_unit_amount": None,
            "livemode": False,
            "lookup_key": None,
            "metadata": metadata_update({}, params, prefix),
            "nickname": None,
            "product": product_id,
            "recurring": recurring,
            "tax_behavior": get_enum(
                params, "tax_behavior", ("inclusive", "exclusive", "unspecified"), prefix
            )
            or "unspecified",
            "tiers_mode": None,
            "transform_quantity": None,
            "type": "recurring" if recurring else "one_time",
            "unit_amount": unit_amount,
            "unit_amount_decimal": str(unit_amount),
        }
        self.store.add(price)
        if emit:
            self.emit("price.created", price)
        return price

    def _recurring(self, params: Params, prefix: str) -> Obj | None:
        recurring = get_hash(params, "recurring", prefix)
        if not recurring:
            return None
        where = f"{prefix}[recurring]" if prefix else "recurring"
        check_known(recurring, ("interval", "interval_count", "usage_type", "trial_period_days"), where)
        interval = get_enum(recurring, "interval", INTERVALS, where, required=True)
        count = get_int(recurring, "interval_count", where, minimum=1) or 1
        limits = {"day": 365, "week": 52, "month": 12, "year": 1}
        assert interval is not None
        if count > limits[interval]:
            raise invalid(
                "Invalid recurring interval: the maximum billing interval is one year (1 year, 12 months, "
                "52 weeks or 365 days).",
                param=f"{where}[interval_count]",
            )
        usage = get_enum(recurring, "usage_type", ("licensed",), where) or "licensed"
        return {
            "interval": interval,
            "interval_count": count,
            "meter": None,
            "trial_period_days": get_int(recurring, "trial_period_days", where, minimum=0),
            "usage_type": usage,
        }

    def update_price(self, price_id: str, params: Params) -> Obj:
        price = self.store.get(price_id, "price")
        check_known(params, ("active", "metadata", "nickname", "lookup_key", "expand"))
        draft = copy.deepcopy(price)
        if "active" in params:
            draft["active"] = bool(get_bool(params, "active"))
        if "nickname" in params:
            draft["nickname"] = get_str(params, "nickname")
        if "lookup_key" in params:
            draft["lookup_key"] = get_str(params, "lookup_key")
        draft["metadata"] = metadata_update(draft["metadata"], params)
        self._commit(price, draft, "price.updated")
        return price

    def list_prices(self, params: Params) -> Obj:
        check_known(
            params,
            (
                "active",
                "currency",
                "product",
                "type",
                "lookup_keys",
                "recurring",
                "created",
                "limit",
                "starting_after",
                "ending_before",
                "expand",
            ),
        )
        items = self.store.all("price")
        for name in ("currency", "product", "type"):
            value = get_str(params, name)
            if value is not None:
                items = [p for p in items if p[name] == value]
        active = get_bool(params, "active")
        if active is not None:
            items = [p for p in items if p["active"] == active]
        keys = [str(k) for k in get_array(params, "lookup_keys")]
        if keys:
            items = [p for p in items if p["lookup_key"] in keys]
        recurring = get_hash(params, "recurring")
        interval = get_str(recurring, "interval", "recurring")
        if interval:
            items = [p for p in items if p["recurring"] and p["recurring"]["interval"] == interval]
        return self.store.page(created_filter(params, items), params, "/v1/prices")

    # -- customers -------------------------------------------------------------------------------------------
    def create_customer(self, params: Params) -> Obj:
        check_known(
            params, ("email", "name", "description", "phone", "metadata", "preferred_locales", "expand")
        )
        fields = {
            "description": get_str(params, "description"),
            "phone": get_str(params, "phone"),
            "metadata": metadata_update({}, params),
            "preferred_locales": [str(x) for x in get_array(params, "preferred_locales")],
        }
        customer = self._new_customer(get_str(params, "email"), get_str(params, "name"))
        customer.update(fields)
        self.emit("customer.created", customer)
        return customer

    def _new_customer(self, email: str | None, name: str | None) -> Obj:
        customer: Obj = {
            "id": self.store.new_id("cus"),
            "object": "customer",
            "address": None,
            "balance": 0,
            "created": self.now(),
            "currency": None,
            "default_source": None,
            "delinquent": False,
            "description": None,
            "email": email,
            "invoice_prefix": self.store.new_id("x")[3:11].upper(),
            "invoice_settings": {"custom_fields": None, "default_payment_method": None, "footer": None},
            "livemode": False,
            "metadata": {},
            "name": name,
            "phone": None,
            "preferred_locales": [],
            "shipping": None,
            "tax_exempt": "none",
        }
        return self.store.add(customer)

    def update_customer(self, customer_id: str, params: Params) -> Obj:
        customer = self.store.get(customer_id, "customer")
        check_known(
            params, ("email", "name", "description", "phone", "metadata", "preferred_locales", "expand")
        )
        draft = copy.deepcopy(customer)
        for name in ("email", "name", "description", "phone"):
            if name in params:
                draft[name] = get_str(params, name)
        if "preferred_locales" in params:
            draft["preferred_locales"] = [str(x) for x in get_array(params, "preferred_locales")]
        draft["metadata"] = metadata_update(draft["metadata"], params)
        self._commit(customer, draft, "customer.updated")
        return customer

    def list_customers(self, params: Params) -> Obj:
        check_known(params, ("email", "created", "limit", "starting_after", "ending_before", "expand"))
        items = self.store.all("customer")
        email = get_str(params, "email")
        if email is not None:
            items = [c for c in items if c["email"] == email]
        return self.store.page(created_filter(params, items), params, "/v1/customers")

    # -- Checkout Sessions -----------------------------------------------------------------------------------
    def create_checkout_session(self, params: Params) -> Obj:
        check_known(
            params,
            (
                "mode",
                "line_items",
                "success_url",
                "cancel_url",
                "client_reference_id",
                "metadata",
                "customer",
                "customer_email",
                "customer_creation",
                "expand",
                "expires_at",
                "locale",
                "payment_method_types",
                "allow_promotion_codes",
                "billing_address_collection",
                "subscription_data",
                "payment_intent_data",
                "currency",
            ),
        )
        mode = get_enum(params, "mode", ("payment", "subscription"), required=True)
        customer_id = get_str(params, "customer")
        email = get_str(params, "customer_email")
        if customer_id and email:
            raise invalid(
                "You may only specify one of these parameters: customer, customer_email.",
                param="customer_email",
            )
        if customer_id:
            self.store.get(customer_id, "customer", "customer")
        creation = get_enum(params, "customer_creation", ("always", "if_required"))
        if creation and mode == "subscription":
            raise invalid(
                "`customer_creation` can only be used in `payment` mode.", param="customer_creation"
            )
        if creation and customer_id:
            raise invalid(
                "You may only specify one of these parameters: customer, customer_creation.",
                param="customer_creation",
            )
        for url_param in ("success_url", "cancel_url"):
            url = get_str(params, url_param)
            if url is not None and not url.startswith(("http://", "https://")):
                raise invalid("Not a valid URL", param=url_param)
        now = self.now()
        expires_at = get_int(params, "expires_at")
        if expires_at is None:
            expires_at = now + SESSION_LIFETIME
        elif not now + 1800 <= expires_at <= now + SESSION_LIFETIME:
            raise invalid(
                "The `expires_at` timestamp must be between 30 minutes and 24 hours from Checkout Session "
                "creation.",
                param="expires_at",
            )
        subscription_data = get_hash(params, "subscription_data")
        intent_data = get_hash(params, "payment_intent_data")
        if subscription_data and mode != "subscription":
            raise invalid(
                "You can not pass `subscription_data` in `payment` mode.", param="subscription_data"
            )
        if intent_data and mode != "payment":
            raise invalid(
                "You can not pass `payment_intent_data` in `subscription` mode.", param="payment_intent_data"
            )
        check_known(subscription_data, ("metadata", "description"), "subscription_data")
        check_known(intent_data, ("metadata", "description", "receipt_email"), "payment_intent_data")
        metadata_update({}, subscription_data, "subscription_data")
        metadata_update({}, intent_data, "payment_intent_data")
        with self.store.atomic():
            line_items = self._line_items_from(params, mode or "payment")
        currency = line_items[0]["currency"]
        total = sum(int(item["amount_total"]) for item in line_items)
        session_id = self.store.new_id("cs", test_marker=True)
        session: Obj = {
            "id": session_id,
            "object": "checkout.session",
            "after_expiration": None,
            "allow_promotion_codes": get_bool(params, "allow_promotion_codes"),
            "amount_subtotal": total,
            "amount_total": total,
            "billing_address_collection": get_enum(
                params, "billing_address_collection", ("auto", "required")
            ),
            "cancel_url": get_str(params, "cancel_url"),
            "client_reference_id": get_str(params, "client_reference_id"),
            "created": now,
            "currency": currency,
            "customer": customer_id,
            "customer_creation": None if mode == "subscription" or customer_id else creation or "if_required",
            "customer_details": None,
            "customer_email": email,
            "expires_at": expires_at,
            "invoice": None,
            "livemode": False,
            "locale": get_str(params, "locale"),
            "metadata": metadata_update({}, params),
            "mode": mode,
            "payment_intent": None,
            "payment_link": None,
            "payment_method_types": [str(t) for t in get_array(params, "payment_method_types")] or ["card"],
            "payment_status": "unpaid",
            "status": "open",
            "submit_type": None,
            "subscription": None,
            "success_url": get_str(params, "success_url"),
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "ui_mode": "hosted",
            "url": self.checkout_url(session_id),
        }
        self._line_items[session_id] = line_items
        self._session_options[session_id] = {
            "subscription_data": subscription_data,
            "intent_data": intent_data,
        }
        return self.store.add(session)

    def _line_items_from(self, params: Params, mode: str) -> list[Obj]:
        raw = get_array(params, "line_items")
        if not raw:
            raise missing_param("line_items")
        items: list[Obj] = []
        for index, entry in enumerate(raw):
            where = f"line_items[{index}]"
            if not isinstance(entry, dict):
                raise invalid("Invalid hash", param=where)
            check_known(entry, ("price", "price_data", "quantity"), where)
            price_id = get_str(entry, "price", where)
            price_data = get_hash(entry, "price_data", where)
            if price_id and price_data:
                raise invalid(
                    "You may only specify one of these parameters: price, price_data.",
                    param=f"{where}[price]",
                )
            if price_id:
                price = self.store.get(price_id, "price", f"{where}[price]")
                if not price["active"]:
                    raise invalid(
                        "The price specified is inactive. This field only accepts active prices.",
                        param=f"{where}[price]",
                    )
            elif price_data:
                price = self._price_from_data(price_data, f"{where}[price_data]")
            else:
                raise invalid(
                    "You must specify either `price` or `price_data` in each line item.", param=where
                )
            quantity = get_int(entry, "quantity", where, minimum=1)
            if quantity is None:
                raise missing_param(f"{where}[quantity]")
            if mode == "payment" and price["type"] == "recurring":
                raise invalid(
                    "You specified `payment` mode but passed a recurring price. Either switch to "
                    "`subscription` mode or use only one-time prices.",
                    param=f"{where}[price]",
                )
            product = self.store.get(price["product"], "product", f"{where}[price]")
            amount = int(price["unit_amount"]) * quantity
            items.append(
                {
                    "id": self.store.new_id("li"),
                    "object": "item",
                    "amount_discount": 0,
                    "amount_subtotal": amount,
                    "amount_tax": 0,
                    "amount_total": amount,
                    "currency": price["currency"],
                    "description": product["name"],
                    "price": copy.deepcopy(price),
                    "quantity": quantity,
                }
            )
        currencies = {item["currency"] for item in items}
        if len(currencies) > 1:
            raise invalid("All line items must have the same currency.", param="line_items")
        if mode == "subscription":
            recurring = [item["price"]["recurring"] for item in items if item["price"]["recurring"]]
            if not recurring:
                raise invalid(
                    "You must specify at least one recurring price in `subscription` mode when using prices.",
                    param="line_items",
                )
            if len({(r["interval"], r["interval_count"]) for r in recurring}) > 1:
                raise invalid(
                    "Checkout does not support multiple prices with different billing intervals.",
                    param="line_items",
                )
        return items

    def _price_from_data(self, data: Params, where: str) -> Obj:
        check_known(
            data, ("currency", "unit_amount", "product", "product_data", "recurring", "tax_behavior"), where
        )
        product_id = get_str(data, "product", where)
        product_data = get_hash(data, "product_data", where)
        if product_id and product_data:
            raise invalid(
                "You may only specify one of these parameters: product, product_data.",
                param=f"{where}[product_data]",
            )
        if product_id:
            self.store.get(product_id, "product", f"{where}[product]")
        elif product_data:
            product_id = self.create_product(product_data, f"{where}[product_data]", emit=False)["id"]
        else:
            raise missing_param(f"{where}[product_data]")
        price = self._new_price(data, where, product_id, emit=False)
        price["active"] = False  # inline prices cannot be reused, as on Stripe
        return price

    def _expand_line_items(self, session: Obj) -> Obj:
        items = self._line_items.get(session["id"], [])
        return {
            "object": "list",
            "data": copy.deepcopy(items),
            "has_more": False,
            "url": f"/v1/checkout/sessions/{session['id']}/line_items",
        }

    def checkout_line_items(self, session_id: str, params: Params) -> Obj:
        check_known(params, ("limit", "starting_after", "ending_before", "expand"))
        self.store.get(session_id, "checkout.session", "session")
        items = copy.deepcopy(self._line_items.get(session_id, []))
        return self.store.page(items, params, f"/v1/checkout/sessions/{session_id}/line_items")

    def get_checkout_session(self, session_id: str, param: str = "session") -> Obj:
        session = self.store.get(session_id, "checkout.session", param)
        self._expire_if_due(session)
        return session

    def list_checkout_sessions(self, params: Params) -> Obj:
        check_known(
            params,
            (
                "customer",
                "customer_details",
                "payment_intent",
                "status",
                "subscription",
                "created",
                "limit",
                "starting_after",
                "ending_before",
                "expand",
            ),
        )
        items = self.store.all("checkout.session")
        for session in items:
            self._expire_if_due(session)
        for name in ("customer", "payment_intent", "subscription"):
            value = get_str(params, name)
            if value is not None:
                items = [s for s in items if s[name] == value]
        status = get_enum(params, "status", ("open", "complete", "expired"))
        if status is not None:
            items = [s for s in items if s["status"] == status]
        details = get_hash(params, "customer_details")
        check_known(details, ("email",), "customer_details")
        email = get_str(details, "email", "customer_details")
        if email is not None:
            items = [s for s in items if (s["customer_details"] or {}).get("email") == email]
        return self.store.page(created_filter(params, items), params, "/v1/checkout/sessions")

    def expire_checkout_session(self, session_id: str) -> Obj:
        session = self.get_checkout_session(session_id)
        if session["status"] != "open":
            raise invalid(
                f"Only Checkout Sessions with a status of `open` can be expired. This Checkout Session has a "
                f"status of `{session['status']}`.",
                param="session",
            )
        self._expire(session)
        return session

    def _expire_if_due(self, session: Obj) -> None:
        if session["status"] == "open" and self.now() >= int(session["expires_at"]):
            self._expire(session)

    def _expire(self, session: Obj) -> None:
        session["status"] = "expired"
        session["url"] = None
        self.emit("checkout.session.expired", session)

    def complete_checkout_session(
        self, session_id: str, email: str | None = None, name: str | None = None
    ) -> Obj:
        """What the customer paying on the hosted page does: the session completes and is paid."""
        session = self.get_checkout_session(session_id)
        if session["status"] != "open":
            raise invalid(
                f"This Checkout Session is {session['status']} and can no longer be paid.",
                param="session",
            )
        customer = self.store.find(session["customer"], "customer")
        email = email or session["customer_email"] or (customer or {}).get("email") or "customer@example.com"
        items = self._line_items[session_id]
        options = self._session_options.get(session_id, {})
        needs_customer = session["mode"] == "subscription" or session["customer_creation"] == "always"
        if needs_customer and customer is None:
            customer = self._new_customer(email, name)
            self.emit("customer.created", customer)
        session["customer"] = customer["id"] if customer else None
        session["customer_details"] = {
            "address": None,
            "email": email,
            "name": name,
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": [],
        }
        if session["mode"] == "payment":
            intent_data = options.get("intent_data", {})
            description = get_str(intent_data, "description") or ", ".join(
                f"{i['quantity']} × {i['description']}" for i in items
            )
            intent, _, pending = self._collect(
                int(session["amount_total"]),
                session["currency"],
                session["customer"],
                description,
                metadata_update({}, intent_data),
                receipt_email=get_str(intent_data, "receipt_email") or email,
            )
            self._emit_all(pending)
            session["payment_intent"] = intent["id"]
        else:
            assert customer is not None
            subscription_data = options.get("subscription_data", {})
            subscription, invoice = self._start_subscription(
                customer,
                items,
                metadata_update({}, subscription_data),
                get_str(subscription_data, "description"),
            )
            session["subscription"] = subscription["id"]
            session["invoice"] = invoice["id"]
        session["status"] = "complete"
        session["payment_status"] = "paid"
        session["url"] = None
        self.emit("checkout.session.completed", session)
        return session

    # -- payments --------------------------------------------------------------------------------------------
    def _collect(
        self,
        amount: int,
        currency: str,
        customer_id: str | None,
        description: str | None,
        metadata: dict[str, str],
        receipt_email: str | None = None,
        invoice_id: str | None = None,
        fail: bool = False,
    ) -> tuple[Obj, Obj, Pending]:
        """A PaymentIntent confirmed with the test card, its charge (succeeded, or declined with ``fail``) and
        the events to record."""
        now = self.now()
        intent: Obj = {
            "id": self.store.new_id("pi"),
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": 0,
            "canceled_at": None,
            "capture_method": "automatic",
            "client_secret": None,
            "confirmation_method": "automatic",
            "created": now,
            "currency": currency,
            "customer": customer_id,
            "description": description,
            "invoice": invoice_id,
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": metadata,
            "payment_method": None,
            "payment_method_types": ["card"],
            "receipt_email": receipt_email,
            "status": "requires_payment_method",
        }
        intent["client_secret"] = f"{intent['id']}_secret_{self.store.new_id('x')[4:]}"
        self.store.add(intent)
        charge, pending = self._attempt(intent, fail)
        return intent, charge, pending

    def _attempt(self, intent: Obj, fail: bool) -> tuple[Obj, Pending]:
        now = self.now()
        method = self.store.new_id("pm")
        charge: Obj = {
            "id": self.store.new_id("ch"),
            "object": "charge",
            "amount": intent["amount"],
            "amount_captured": 0 if fail else intent["amount"],
            "amount_refunded": 0,
            "balance_transaction": None if fail else self.store.new_id("txn"),
            "billing_details": {
                "address": None,
                "email": intent["receipt_email"],
                "name": None,
                "phone": None,
            },
            "captured": not fail,
            "created": now,
            "currency": intent["currency"],
            "customer": intent["customer"],
            "description": intent["description"],
            "disputed": False,
            "failure_code": DECLINE["code"] if fail else None,
            "failure_message": DECLINE["message"] if fail else None,
            "invoice": intent["invoice"],
            "livemode": False,
            "metadata": dict(intent["metadata"]),
            "outcome": {
                "network_status": "declined_by_network" if fail else "approved_by_network",
                "reason": DECLINE["decline_code"] if fail else None,
                "risk_level": "normal",
                "seller_message": "The bank did not return any further details with this decline."
                if fail
                else "Payment complete.",
                "type": "issuer_declined" if fail else "authorized",
            },
            "paid": not fail,
            "payment_intent": intent["id"],
            "payment_method": method,
            "payment_method_details": {"card": dict(CARD), "type": "card"},
            "receipt_email": intent["receipt_email"],
            "receipt_url": None,
            "refunded": False,
            "status": "failed" if fail else "succeeded",
        }
        self.store.add(charge)
        intent["latest_charge"] = charge["id"]
        intent["payment_method"] = method
        if fail:
            intent["status"] = "requires_payment_method"
            intent["last_payment_error"] = {**DECLINE, "charge": charge["id"]}
            return charge, [_snap("charge.failed", charge), _snap("payment_intent.payment_failed", intent)]
        intent["status"] = "succeeded"
        intent["amount_received"] = intent["amount"]
        intent["last_payment_error"] = None
        return charge, [_snap("charge.succeeded", charge), _snap("payment_intent.succeeded", intent)]

    def list_payment_intents(self, params: Params) -> Obj:
        check_known(params, ("customer", "created", "limit", "starting_after", "ending_before", "expand"))
        items = self._filtered("payment_intent", params, ("customer",))
        return self.store.page(created_filter(params, items), params, "/v1/payment_intents")

    def list_charges(self, params: Params) -> Obj:
        check_known(
            params,
            ("customer", "payment_intent", "created", "limit", "starting_after", "ending_before", "expand"),
        )
        items = self._filtered("charge", params, ("customer", "payment_intent"))
        return self.store.page(created_filter(params, items), params, "/v1/charges")

    # -- refunds ---------------------------------------------------------------------------------------------
    def create_refund(self, params: Params) -> Obj:
        check_known(params, ("charge", "payment_intent", "amount", "reason", "metadata", "expand"))
        charge_id = get_str(params, "charge")
        intent_id = get_str(params, "payment_intent")
        if charge_id and intent_id:
            raise invalid(
                "You may only specify one of these parameters: charge, payment_intent.",
                param="payment_intent",
            )
        if intent_id:
            intent = self.store.get(intent_id, "payment_intent", "payment_intent")
            charge = self.store.find(intent["latest_charge"], "charge")
            if charge is None or charge["status"] != "succeeded":
                raise invalid(
                    f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
                    param="payment_intent",
                )
        elif charge_id:
            charge = self.store.get(charge_id, "charge", "charge")
            if charge["status"] != "succeeded":
                raise invalid(f"Charge {charge_id} has not succeeded and cannot be refunded.", param="charge")
        else:
            raise invalid("One of `charge` or `payment_intent` is required.", param="charge")
        remaining = int(charge["amount_captured"]) - int(charge["amount_refunded"])
        if remaining <= 0:
            raise invalid(
                f"Charge {charge['id']} has already been refunded.",
                param="charge",
                code="charge_already_refunded",
            )
        amount = get_int(params, "amount", minimum=1)
        if amount is None:
            amount = remaining
        if amount > remaining:
            raise invalid(
                f"Refund amount ({format_amount(amount, charge['currency'])}) is greater than unrefunded "
                f"amount on charge ({format_amount(remaining, charge['currency'])})",
                param="amount",
                code="amount_too_large",
            )
        refund: Obj = {
            "id": self.store.new_id("re"),
            "object": "refund",
            "amount": amount,
            "balance_transaction": self.store.new_id("txn"),
            "charge": charge["id"],
            "created": self.now(),
            "currency": charge["currency"],
            "metadata": metadata_update({}, params),
            "payment_intent": charge["payment_intent"],
            "reason": get_enum(params, "reason", ("duplicate", "fraudulent", "requested_by_customer")),
            "receipt_number": None,
            "status": "succeeded",
        }
        self.store.add(refund)
        before = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
        charge["amount_refunded"] = int(charge["amount_refunded"]) + amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount_captured"]
        self.emit("refund.created", refund)
        self.emit("charge.refunded", charge, before)
        return refund

    def list_refunds(self, params: Params) -> Obj:
        check_known(
            params,
            ("charge", "payment_intent", "created", "limit", "starting_after", "ending_before", "expand"),
        )
        items = self._filtered("refund", params, ("charge", "payment_intent"))
        return self.store.page(created_filter(params, items), params, "/v1/refunds")

    # -- subscriptions ---------------------------------------------------------------------------------------
    def _start_subscription(
        self, customer: Obj, line_items: list[Obj], metadata: dict[str, str], description: str | None
    ) -> tuple[Obj, Obj]:
        now = self.now()
        recurring = [li for li in line_items if li["price"]["recurring"]]
        one_time = [li for li in line_items if not li["price"]["recurring"]]
        first = recurring[0]["price"]["recurring"]
        end = add_interval(now, first["interval"], first["interval_count"])
        sub_id = self.store.new_id("sub")
        items = [
            self._subscription_item(sub_id, li["price"], int(li["quantity"]), now, end) for li in recurring
        ]
        subscription: Obj = {
            "id": sub_id,
            "object": "subscription",
            "billing_cycle_anchor": now,
            "cancel_at": None,
            "cancel_at_period_end": False,
            "canceled_at": None,
            "cancellation_details": {"comment": None, "feedback": None, "reason": None},
            "collection_method": "charge_automatically",
            "created": now,
            "currency": line_items[0]["currency"],
            "current_period_end": end,
            "current_period_start": now,
            "customer": customer["id"],
            "default_payment_method": None,
            "description": description,
            "ended_at": None,
            "items": {
                "object": "list",
                "data": items,
                "has_more": False,
                "total_count": len(items),
                "url": f"/v1/subscription_items?subscription={sub_id}",
            },
            "latest_invoice": None,
            "livemode": False,
            "metadata": metadata,
            "pending_update": None,
            "start_date": now,
            "status": "active",
            "trial_end": None,
            "trial_start": None,
        }
        self.store.add(subscription)
        self._periods[sub_id] = 0
        invoice, pending = self._invoice(subscription, customer, "subscription_create", False, one_time)
        charge = self.store.find(invoice["charge"], "charge")
        if charge is not None:
            subscription["default_payment_method"] = charge["payment_method"]
        self.emit("customer.subscription.created", subscription)
        self._emit_all(pending)
        return subscription, invoice

    def _subscription_item(self, sub_id: str, price: Obj, quantity: int, start: int, end: int) -> Obj:
        return {
            "id": self.store.new_id("si"),
            "object": "subscription_item",
            "created": start,
            "current_period_end": end,
            "current_period_start": start,
            "metadata": {},
            "price": copy.deepcopy(price),
            "quantity": quantity,
            "subscription": sub_id,
        }

    def get_subscription(self, sub_id: str) -> Obj:
        return self.store.get(sub_id, "subscription", "subscription_exposed_id")

    def list_subscriptions(self, params: Params) -> Obj:
        check_known(
            params,
            ("customer", "price", "status", "created", "limit", "starting_after", "ending_before", "expand"),
        )
        items = self._filtered("subscription", params, ("customer",))
        status = get_enum(
            params,
            "status",
            (
                "active",
                "past_due",
                "unpaid",
                "canceled",
                "incomplete",
                "incomplete_expired",
                "trialing",
                "paused",
                "all",
                "ended",
            ),
        )
        if status is None:
            items = [s for s in items if s["status"] != "canceled"]
        elif status == "ended":
            items = [s for s in items if s["status"] == "canceled"]
        elif status != "all":
            items = [s for s in items if s["status"] == status]
        price = get_str(params, "price")
        if price is not None:
            items = [s for s in items if any(i["price"]["id"] == price for i in s["items"]["data"])]
        return self.store.page(created_filter(params, items), params, "/v1/subscriptions")

    def list_subscription_items(self, params: Params) -> Obj:
        check_known(params, ("subscription", "limit", "starting_after", "ending_before", "expand"))
        sub_id = get_str(params, "subscription", required=True)
        subscription = self.store.get(sub_id, "subscription", "subscription")
        items = copy.deepcopy(subscription["items"]["data"])
        return self.store.page(items, params, "/v1/subscription_items")

    def update_subscription(self, sub_id: str, params: Params) -> Obj:
        subscription = self.get_subscription(sub_id)
        check_known(
            params,
            (
                "cancel_at_period_end",
                "items",
                "metadata",
                "description",
                "proration_behavior",
                "payment_behavior",
                "cancellation_details",
                "expand",
            ),
        )
        ended = subscription["status"] in ("canceled", "incomplete_expired")
        if ended and set(params) - {"metadata", "cancellation_details", "expand"}:
            raise invalid(
                "A canceled subscription can only update its cancellation_details and metadata.",
                param=None,
            )
        get_enum(params, "proration_behavior", ("create_prorations", "none", "always_invoice"))
        get_enum(
            params,
            "payment_behavior",
            ("allow_incomplete", "default_incomplete", "error_if_incomplete", "pending_if_incomplete"),
        )
        draft = copy.deepcopy(subscription)
        if "items" in params:
            self._update_items(draft, get_array(params, "items"))
        cancel = get_bool(params, "cancel_at_period_end")
        if cancel is not None:
            draft["cancel_at_period_end"] = cancel
            draft["cancel_at"] = draft["current_period_end"] if cancel else None
            draft["canceled_at"] = self.now() if cancel else None
            draft["cancellation_details"]["reason"] = "cancellation_requested" if cancel else None
        details = get_hash(params, "cancellation_details")
        check_known(details, ("comment", "feedback"), "cancellation_details")
        if "comment" in details:
            draft["cancellation_details"]["comment"] = get_str(details, "comment", "cancellation_details")
        if "feedback" in details:
            draft["cancellation_details"]["feedback"] = get_enum(
                details,
                "feedback",
                (
                    "customer_service",
                    "low_quality",
                    "missing_features",
                    "other",
                    "switched_service",
                    "too_complex",
                    "too_expensive",
                    "unused",
                ),
                "cancellation_details",
            )
        if "description" in params:
            draft["description"] = get_str(params, "description")
        draft["metadata"] = metadata_update(draft["metadata"], params)
        self._commit(subscription, draft, "customer.subscription.updated")
        return subscription

    def _update_items(self, subscription: Obj, changes: list[Any]) -> None:
        items: list[Obj] = [copy.deepcopy(i) for i in subscription["items"]["data"]]
        for index, change in enumerate(changes):
            where = f"items[{index}]"
            if not isinstance(change, dict):
                raise invalid("Invalid hash", param=where)
            check_known(change, ("id", "price", "price_data", "quantity", "deleted", "metadata"), where)
            item_id = get_str(change, "id", where)
            current = next((i for i in items if i["id"] == item_id), None) if item_id else None
            if item_id and current is None:
                raise invalid(
                    f"Cannot find subscription item {item_id} on subscription {subscription['id']}.",
                    param=f"{where}[id]",
                )
            if get_bool(change, "deleted", where):
                if current is None:
                    raise missing_param(f"{where}[id]")
                items.remove(current)
                continue
            price = self._item_price(change, where, required=current is None)
            if price is not None and price["currency"] != subscription["currency"]:
                raise invalid(
                    "The price specified does not match the currency of the subscription "
                    f"({subscription['currency']}).",
                    param=f"{where}[price]",
                )
            quantity = get_int(change, "quantity", where, minimum=0)
            if current is None:
                assert price is not None
                current = self._subscription_item(
                    subscription["id"],
                    price,
                    1 if quantity is None else quantity,
                    int(subscription["current_period_start"]),
                    int(subscription["current_period_end"]),
                )
                items.append(current)
            else:
                if price is not None:
                    current["price"] = copy.deepcopy(price)
                if quantity is not None:
                    current["quantity"] = quantity
            current["metadata"] = metadata_update(current["metadata"], change, where)
        if not items:
            raise invalid("A subscription must have at least one active plan.", param="items")
        intervals = {
            (i["price"]["recurring"]["interval"], i["price"]["recurring"]["interval_count"]) for i in items
        }
        if len(intervals) > 1:
            raise invalid(
                "Currency and interval fields must match across all plans on a subscription.", param="items"
            )
        subscription["items"]["data"] = items
        subscription["items"]["total_count"] = len(items)

    def _item_price(self, change: Params, where: str, required: bool) -> Obj | None:
        price_id = get_str(change, "price", where)
        data = get_hash(change, "price_data", where)
        if price_id and data:
            raise invalid(
                "You may only specify one of these parameters: price, price_data.", param=f"{where}[price]"
            )
        if price_id:
            price = self.store.get(price_id, "price", f"{where}[price]")
            if not price["active"]:
                raise invalid("The price specified is inactive.", param=f"{where}[price]")
        elif data:
            check_known(
                data,
                ("currency", "unit_amount", "product", "recurring", "tax_behavior"),
                f"{where}[price_data]",
            )
            product_id = get_str(data, "product", f"{where}[price_data]", required=True)
            self.store.get(product_id, "product", f"{where}[price_data][product]")
            if not get_hash(data, "recurring", f"{where}[price_data]"):
                raise missing_param(f"{where}[price_data][recurring]")
            assert product_id is not None
            price = self._new_price(data, f"{where}[price_data]", product_id, emit=False)
            price["active"] = False
        elif required:
            raise missing_param(f"{where}[price]")
        else:
            return None
        if price["type"] != "recurring":
            raise invalid(
                "The price specified is set to `type=one_time` but this field only accepts prices with "
                "`type=recurring`.",
                param=f"{where}[price]",
            )
        return price

    def cancel_subscription(self, sub_id: str, params: Params) -> Obj:
        subscription = self.get_subscription(sub_id)
        check_known(params, ("invoice_now", "prorate", "cancellation_details", "expand"))
        get_bool(params, "invoice_now")
        get_bool(params, "prorate")
        if subscription["status"] == "canceled":
            raise invalid(
                "A canceled subscription can only update its cancellation_details and metadata.",
                param=None,
            )
        details = get_hash(params, "cancellation_details")
        check_known(details, ("comment", "feedback"), "cancellation_details")
        if "comment" in details:
            subscription["cancellation_details"]["comment"] = get_str(
                details, "comment", "cancellation_details"
            )
        if "feedback" in details:
            subscription["cancellation_details"]["feedback"] = get_str(
                details, "feedback", "cancellation_details"
            )
        self._end(subscription, self.now(), "cancellation_requested")
        return subscription

    def _end(self, subscription: Obj, ended_at: int, reason: str) -> None:
        now = self.now()
        subscription["status"] = "canceled"
        subscription["ended_at"] = ended_at
        subscription["canceled_at"] = subscription["canceled_at"] or now
        subscription["cancellation_details"]["reason"] = (
            subscription["cancellation_details"]["reason"] or reason
        )
        self.emit("customer.subscription.deleted", subscription)

    def advance_subscription(self, sub_id: str, fail: bool = False) -> Obj | None:
        """Move a subscription into its next period: a ``subscription_cycle`` invoice is created and paid (or
        its payment declined with ``fail``); a subscription set to cancel at period end is canceled instead.
        Returns the new invoice, or None when the subscription ended."""
        subscription = self.get_subscription(sub_id)
        if subscription["status"] == "canceled":
            raise invalid(f"Subscription {sub_id} is canceled and has no next period.", param="subscription")
        if subscription["cancel_at_period_end"]:
            self._end(subscription, int(subscription["current_period_end"]), "cancellation_requested")
            return None
        before = copy.deepcopy(subscription)
        recurring = subscription["items"]["data"][0]["price"]["recurring"]
        self._periods[sub_id] = self._periods.get(sub_id, 0) + 1
        index = self._periods[sub_id]
        anchor = int(subscription["billing_cycle_anchor"])
        start = add_interval(anchor, recurring["interval"], recurring["interval_count"] * index)
        end = add_interval(anchor, recurring["interval"], recurring["interval_count"] * (index + 1))
        subscription["current_period_start"] = start
        subscription["current_period_end"] = end
        for item in subscription["items"]["data"]:
            item["current_period_start"] = start
            item["current_period_end"] = end
        customer = self.store.get(subscription["customer"], "customer")
        invoice, pending = self._invoice(subscription, customer, "subscription_cycle", fail=fail)
        if fail:
            subscription["status"] = "past_due"
        self._emit_updated("customer.subscription.updated", subscription, before)
        self._emit_all(pending)
        return invoice

    # -- invoices --------------------------------------------------------------------------------------------
    def _invoice(
        self, subscription: Obj, customer: Obj, reason: str, fail: bool, one_time: list[Obj] | None = None
    ) -> tuple[Obj, Pending]:
        """A subscription invoice for the current period (plus ``one_time`` Checkout line items, charged
        once), finalized and collected, with its events in the order Stripe records them."""
        now = self.now()
        start, end = int(subscription["current_period_start"]), int(subscription["current_period_end"])
        invoice_id = self.store.new_id("in")
        lines: list[Obj] = []
        for item in subscription["items"]["data"]:
            price = item["price"]
            product = self.store.find(price["product"], "product") or {"name": price["product"]}
            amount = int(price["unit_amount"]) * int(item["quantity"])
            recurring = price["recurring"]
            every = (
                recurring["interval"]
                if recurring["interval_count"] == 1
                else (f"every {recurring['interval_count']} {recurring['interval']}s")
            )
            lines.append(
                {
                    "id": self.store.new_id("il"),
                    "object": "line_item",
                    "amount": amount,
                    "currency": price["currency"],
                    "description": f"{item['quantity']} × {product['name']} "
                    f"(at {format_amount(int(price['unit_amount']), price['currency'])} / {every})",
                    "discountable": True,
                    "invoice": invoice_id,
                    "livemode": False,
                    "metadata": {},
                    "parent": {
                        "type": "subscription_item_details",
                        "subscription_item_details": {
                            "invoice_item": None,
                            "proration": False,
                            "subscription": subscription["id"],
                            "subscription_item": item["id"],
                        },
                    },
                    "period": {"end": end, "start": start},
                    "price": copy.deepcopy(price),
                    "pricing": {
                        "type": "price_details",
                        "price_details": {"price": price["id"], "product": price["product"]},
                        "unit_amount_decimal": str(price["unit_amount"]),
                    },
                    "proration": False,
                    "quantity": item["quantity"],
                    "subscription": subscription["id"],
                    "subscription_item": item["id"],
                    "type": "subscription",
                }
            )
        for entry in one_time or []:
            price = entry["price"]
            lines.append(
                {
                    "id": self.store.new_id("il"),
                    "object": "line_item",
                    "amount": int(entry["amount_total"]),
                    "currency": price["currency"],
                    "description": entry["description"],
                    "discountable": True,
                    "invoice": invoice_id,
                    "livemode": False,
                    "metadata": {},
                    "parent": {
                        "type": "invoice_item_details",
                        "invoice_item_details": {
                            "invoice_item": self.store.new_id("ii"),
                            "proration": False,
                            "subscription": subscription["id"],
                        },
                    },
                    "period": {"end": now, "start": now},
                    "price": copy.deepcopy(price),
                    "pricing": {
                        "type": "price_details",
                        "price_details": {"price": price["id"], "product": price["product"]},
                        "unit_amount_decimal": str(price["unit_amount"]),
                    },
                    "proration": False,
                    "quantity": entry["quantity"],
                    "subscription": subscription["id"],
                    "subscription_item": None,
                    "type": "invoiceitem",
                }
            )
        total = sum(int(line["amount"]) for line in lines)
        prefix = customer["invoice_prefix"]
        self._invoice_numbers[prefix] = self._invoice_numbers.get(prefix, 0) + 1
        invoice: Obj = {
            "id": invoice_id,
            "object": "invoice",
            "account_country": "US",
            "amount_due": total,
            "amount_paid": 0,
            "amount_remaining": total,
            "attempt_count": 0,
            "attempted": False,
            "billing_reason": reason,
            "charge": None,
            "collection_method": "charge_automatically",
            "created": now,
            "currency": subscription["currency"],
            "customer": customer["id"],
            "customer_email": customer["email"],
            "customer_name": customer["name"],
            "description": None,
            "hosted_invoice_url": self.invoice_url(invoice_id),
            "invoice_pdf": None,
            "lines": {
                "object": "list",
                "data": lines,
                "has_more": False,
                "total_count": len(lines),
                "url": f"/v1/invoices/{invoice_id}/lines",
            },
            "livemode": False,
            "metadata": {},
            "next_payment_attempt": None,
            "number": f"{prefix}-{self._invoice_numbers[prefix]:04d}",
            "paid": False,
            "parent": {
                "type": "subscription_details",
                "quote_details": None,
                "subscription_details": {
                    "metadata": dict(subscription["metadata"]),
                    "subscription": subscription["id"],
                },
            },
            "payment_intent": None,
            "period_end": end,
            "period_start": start,
            "status": "open",
            "status_transitions": {
                "finalized_at": now,
                "marked_uncollectible_at": None,
                "paid_at": None,
                "voided_at": None,
            },
            "subscription": subscription["id"],
            "subtotal": total,
            "total": total,
        }
        self.store.add(invoice)
        subscription["latest_invoice"] = invoice_id
        draft = copy.deepcopy(invoice)
        draft["status"] = "draft"
        draft["status_transitions"]["finalized_at"] = None
        pending: Pending = [("invoice.created", draft, None), _snap("invoice.finalized", invoice)]
        if total == 0:
            return invoice, pending + self._mark_paid(invoice, None)
        description = "Subscription creation" if reason == "subscription_create" else "Subscription update"
        intent, charge, payment = self._collect(
            total,
            invoice["currency"],
            customer["id"],
            description,
            {},
            receipt_email=customer["email"],
            invoice_id=invoice_id,
            fail=fail,
        )
        pending += payment
        invoice["payment_intent"] = intent["id"]
        invoice["attempted"] = True
        invoice["attempt_count"] = 1
        if charge["status"] == "succeeded":
            return invoice, pending + self._mark_paid(invoice, charge)
        invoice["next_payment_attempt"] = now + 3 * 24 * 3600
        return invoice, [*pending, _snap("invoice.payment_failed", invoice)]

    def _mark_paid(self, invoice: Obj, charge: Obj | None) -> Pending:
        invoice["status"] = "paid"
        invoice["paid"] = True
        invoice["amount_paid"] = invoice["amount_due"]
        invoice["amount_remaining"] = 0
        invoice["charge"] = charge["id"] if charge else None
        invoice["next_payment_attempt"] = None
        invoice["status_transitions"]["paid_at"] = self.now()
        return [_snap("invoice.paid", invoice), _snap("invoice.payment_succeeded", invoice)]

    def pay_invoice(self, invoice_id: str, params: Params | None = None, fail: bool = False) -> Obj:
        """Collect an open invoice again (the customer updated their card): paid, or declined with
        ``fail``."""
        check_known(params or {}, ("expand",))
        invoice = self.store.get(invoice_id, "invoice", "invoice")
        if invoice["status"] == "paid":
            raise invalid("Invoice is already paid", param="invoice", code="invoice_already_paid")
        if invoice["status"] != "open":
            raise invalid(f"This invoice is {invoice['status']} and cannot be paid.", param="invoice")
        intent = self.store.get(invoice["payment_intent"], "payment_intent")
        charge, pending = self._attempt(intent, fail)
        invoice["attempted"] = True
        invoice["attempt_count"] = int(invoice["attempt_count"]) + 1
        if fail:
            self._emit_all([*pending, _snap("invoice.payment_failed", invoice)])
            return invoice
        self._emit_all(pending + self._mark_paid(invoice, charge))
        subscription = self.store.find(invoice["subscription"], "subscription")
        if (
            subscription is not None
            and subscription["status"] in ("past_due", "unpaid")
            and subscription["latest_invoice"] == invoice["id"]
        ):
            before = copy.deepcopy(subscription)
            subscription["status"] = "active"
            self._emit_updated("customer.subscription.updated", subscription, before)
        return invoice

    def list_invoices(self, params: Params) -> Obj:
        check_known(
            params,
            (
                "customer",
                "subscription",
                "status",
                "created",
                "limit",
                "starting_after",
                "ending_before",
                "expand",
            ),
        )
        items = self._filtered("invoice", params, ("customer", "subscription"))
        status = get_enum(params, "status", ("draft", "open", "paid", "uncollectible", "void"))
        if status is not None:
            items = [i for i in items if i["status"] == status]
        return self.store.page(created_filter(params, items), params, "/v1/invoices")

    def invoice_lines(self, invoice_id: str, params: Params) -> Obj:
        check_known(params, ("limit", "starting_after", "ending_before", "expand"))
        invoice = self.store.get(invoice_id, "invoice", "invoice")
        lines = copy.deepcopy(invoice["lines"]["data"])
        return self.store.page(lines, params, f"/v1/invoices/{invoice_id}/lines")

    # -- helpers ---------------------------------------------------------------------------------------------
    def _filtered(self, object_type: str, params: Params, fields: tuple[str, ...]) -> list[Obj]:
        items = self.store.all(object_type)
        for name in fields:
            value = get_str(params, name)
            if value is not None:
                items = [o for o in items if o.get(name) == value]
        return items

    def _emit_all(self, pending: Pending) -> None:
        for event_type, obj, previous in pending:
            self.emit(event_type, obj, previous)

    def _commit(self, obj: Obj, draft: Obj, event_type: str) -> None:
        """Replace ``obj``'s fields with the validated ``draft`` and record the update event."""
        before = copy.deepcopy(obj)
        obj.clear()
        obj.update(draft)
        self._emit_updated(event_type, obj, before)

    def _emit_updated(self, event_type: str, obj: Obj, before: Obj) -> None:
        previous = {k: v for k, v in before.items() if obj.get(k) != v}
        if previous:
            self.emit(event_type, obj, previous)


def _currency(params: Params, prefix: str) -> str:
    currency = get_str(params, "currency", prefix, required=True)
    assert currency is not None
    if len(currency) != 3 or not currency.isalpha():
        where = f"{prefix}[currency]" if prefix else "currency"
        raise StripeError(f"Invalid currency: {currency.lower()}.", param=where)
    return currency.lower()


def _snap(event_type: str, obj: Obj, previous: Mapping[str, Any] | None = None) -> tuple[str, Obj, Any]:
    return event_type, copy.deepcopy(obj), previous


def _type_matches(pattern: str, event_type: str) -> bool:
    if pattern.endswith("*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type
