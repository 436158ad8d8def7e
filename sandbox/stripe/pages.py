"""The hosted pages: Checkout (``/checkout/{id}``, where a person pays or goes back) and the hosted invoice
(``/invoices/{id}``)."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from aiohttp import web

from sandbox.stripe.errors import StripeError
from sandbox.stripe.money import format_amount
from sandbox.stripe.store import Obj

if TYPE_CHECKING:
    from sandbox.stripe.server import StripeEmulator

STYLE = """
body { font-family: -apple-system, "Segoe UI", Roboto, sans-serif; background: #f6f9fc; color: #1a1f36;
       margin: 0; }
main { max-width: 460px; margin: 40px auto; background: #fff; border-radius: 8px; padding: 28px;
       box-shadow: 0 2px 8px rgba(0, 0, 0, .08); }
h1 { font-size: 20px; margin: 0 0 4px; } .muted { color: #697386; font-size: 14px; }
table { width: 100%; border-collapse: collapse; margin: 18px 0; } td { padding: 6px 0; }
td.amount { text-align: right; } tr.total td { border-top: 1px solid #e3e8ee; font-weight: 600; }
label { display: block; font-size: 14px; margin: 12px 0 4px; }
input { width: 100%; box-sizing: border-box; padding: 8px; border: 1px solid #cfd7df; border-radius: 4px; }
button { width: 100%; margin-top: 18px; padding: 12px; border: 0; border-radius: 4px; background: #635bff;
         color: #fff; font-size: 16px; cursor: pointer; }
a.back { display: block; margin-top: 14px; text-align: center; color: #635bff; }
.status { padding: 12px; border-radius: 4px; background: #e6f4ea; } .status.bad { background: #fdecea; }
"""


def _page(title: str, body: str, status: int = 200) -> web.Response:
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>"
    )
    return web.Response(status=status, text=document, content_type="text/html")


def _interval(price: Obj) -> str:
    recurring = price.get("recurring")
    if not recurring:
        return ""
    count, unit = recurring["interval_count"], recurring["interval"]
    return f" / {unit}" if count == 1 else f" every {count} {unit}s"


def setup_page_routes(app: web.Application, emu: StripeEmulator) -> None:
    billing = emu.billing

    def session_or_404(session_id: str) -> Obj | None:
        try:
            return billing.get_checkout_session(session_id)
        except StripeError:
            return None

    def render_session(session: Obj, error: str | None = None) -> web.Response:
        e = html.escape
        items = billing.checkout_line_items(session["id"], {"limit": "100"})["data"]
        rows = "".join(
            f"<tr><td>{e(str(item['description']))} × {item['quantity']}</td>"
            f"<td class=amount>{e(format_amount(int(item['amount_total']), item['currency']))}"
            f"{e(_interval(item['price']))}</td></tr>"
            for item in items
        )
        total = format_amount(int(session["amount_total"]), session["currency"])
        header = (
            '<p class="muted">Sandbox Checkout · test mode</p>'
            f"<h1 id=total>{e(total)}</h1>"
            f"<table>{rows}<tr class=total><td>Total due</td><td class=amount>{e(total)}</td></tr></table>"
        )
        if session["status"] == "complete":
            body = header + '<p class="status" id="status">Payment complete. Thank you!</p>'
            if session["success_url"]:
                url = str(session["success_url"]).replace("{CHECKOUT_SESSION_ID}", session["id"])
                body += f'<a class="back" id="continue" href="{e(url)}">Continue</a>'
            return _page("Payment complete", body)
        if session["status"] == "expired":
            body = header + '<p class="status bad" id="status">This checkout session has expired.</p>'
            return _page("Checkout expired", body, status=410)
        customer = billing.store.find(session["customer"], "customer")
        email = session["customer_email"] or (customer or {}).get("email") or ""
        action = "Subscribe" if session["mode"] == "subscription" else "Pay"
        notice = f'<p class="status bad" id="error">{e(error)}</p>' if error else ""
        body = (
            header + notice + f'<form method="post" action="/checkout/{e(session["id"])}/pay">'
            f'<label for="email">Email</label><input id="email" name="email" type="email" value="{e(email)}">'
            '<label for="name">Name on card</label><input id="name" name="name" value="">'
            '<label for="card">Card</label><input id="card" value="4242 4242 4242 4242" readonly>'
            f'<button id="pay" type="submit">{action} {e(total)}</button></form>'
        )
        if session["cancel_url"]:
            body += f'<a class="back" id="cancel" href="{e(str(session["cancel_url"]))}">← Back</a>'
        return _page("Checkout", body)

    async def checkout(request: web.Request) -> web.StreamResponse:
        session = session_or_404(request.match_info["id"])
        if session is None:
            return _page(
                "Not found", "<h1>Something went wrong</h1><p>This checkout page does not exist.</p>", 404
            )
        return render_session(session)

    async def pay(request: web.Request) -> web.StreamResponse:
        session = session_or_404(request.match_info["id"])
        if session is None:
            return _page(
                "Not found", "<h1>Something went wrong</h1><p>This checkout page does not exist.</p>", 404
            )
        form = await request.post()
        email = str(form.get("email") or "").strip() or None
        name = str(form.get("name") or "").strip() or None
        if session["status"] == "open":
            try:
                billing.complete_checkout_session(session["id"], email=email, name=name)
            except StripeError as exc:
                return render_session(session, exc.message)
        if session["status"] == "complete" and session["success_url"]:
            url = str(session["success_url"]).replace("{CHECKOUT_SESSION_ID}", session["id"])
            raise web.HTTPSeeOther(url)
        raise web.HTTPSeeOther(f"/checkout/{session['id']}")

    def render_invoice(invoice: Obj) -> web.Response:
        e = html.escape
        rows = "".join(
            f"<tr><td>{e(str(line['description']))}</td>"
            f"<td class=amount>{e(format_amount(int(line['amount']), line['currency']))}</td></tr>"
            for line in invoice["lines"]["data"]
        )
        total = format_amount(int(invoice["total"]), invoice["currency"])
        body = (
            f'<p class="muted">Invoice {e(str(invoice["number"]))}</p><h1 id=total>{e(total)}</h1>'
            f"<table>{rows}<tr class=total><td>Total</td><td class=amount>{e(total)}</td></tr></table>"
        )
        if invoice["status"] == "paid":
            body += '<p class="status" id="status">Paid</p>'
        elif invoice["status"] == "open":
            body += (
                '<p class="status bad" id="status">Due</p>'
                f'<form method="post" action="/invoices/{e(invoice["id"])}/pay">'
                f'<button id="pay" type="submit">Pay {e(total)}</button></form>'
            )
        else:
            body += f'<p class="status bad" id="status">{e(str(invoice["status"]).capitalize())}</p>'
        return _page(f"Invoice {invoice['number']}", body)

    async def invoice_page(request: web.Request) -> web.StreamResponse:
        invoice = billing.store.find(request.match_info["id"], "invoice")
        if invoice is None:
            return _page("Not found", "<h1>Something went wrong</h1><p>This invoice does not exist.</p>", 404)
        return render_invoice(invoice)

    async def invoice_pay(request: web.Request) -> web.StreamResponse:
        invoice = billing.store.find(request.match_info["id"], "invoice")
        if invoice is None:
            return _page("Not found", "<h1>Something went wrong</h1><p>This invoice does not exist.</p>", 404)
        if invoice["status"] == "open":
            billing.pay_invoice(invoice["id"])
        raise web.HTTPSeeOther(f"/invoices/{invoice['id']}")

    app.router.add_get("/checkout/{id}", checkout)
    app.router.add_post("/checkout/{id}/pay", pay)
    app.router.add_get("/invoices/{id}", invoice_page)
    app.router.add_post("/invoices/{id}/pay", invoice_pay)
