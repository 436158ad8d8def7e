"""What users do: send and edit messages, press inline buttons, upload files, block bots.

Each action stores what the user did in the chat and queues the update Telegram would send to the bot.
Used by the control API (``control.py``) and directly by :class:`~sandbox.telegram.TelegramEmulator`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from dataclasses import dataclass
from typing import Any

from .api import Settings
from .api_media import media_object, store_upload
from .markup import finalize, utf16_len
from .params import Upload
from .payments import InvoiceRecord, PaymentRecord, PreCheckoutRecord, charge_ids, link_slug
from .state import Bot, CallbackQueryRecord, Conversation, Json, State, User

UPLOAD_KINDS = frozenset(
    {"voice", "audio", "document", "photo", "video_note", "video", "animation", "sticker"}
)


class ActionError(ValueError):
    """An action the emulator refuses (answered as HTTP 400 by the control API)."""


@dataclass
class Sent:
    update_id: int | None  # None when the bot's allowed_updates filtered the update out
    message: Json


TIMEOUT_ERROR = "The bot didn't respond in time. Please try again later."


@dataclass
class PaymentOutcome:
    """What became of a payment attempt: ``status`` is "paid" or "failed" (``reason`` declined / timeout)."""

    status: str
    query: PreCheckoutRecord
    payment: PaymentRecord | None = None
    reason: str | None = None  # declined, timeout, cancelled
    error_message: str | None = None

    @property
    def paid(self) -> bool:
        return self.status == "paid"

    def to_control(self) -> Json:
        payment = self.payment
        return {
            "status": self.status,
            "reason": self.reason,
            "error_message": self.error_message,
            "pre_checkout_query_id": self.query.id,
            "pre_checkout_update_id": self.query.update_id,
            "answer_seconds": self.query.answer_seconds,
            "currency": self.query.invoice.currency,
            "total_amount": self.query.total_amount,
            "invoice_payload": self.query.invoice.payload,
            "payment": payment.to_control() if payment else None,
            "telegram_payment_charge_id": payment.telegram_payment_charge_id if payment else None,
            "update_id": payment.update["update_id"] if payment and payment.update else None,
            "message": payment.message if payment else None,
        }


class UserActions:
    def __init__(self, state: State, settings: Settings) -> None:
        self.state = state
        self.settings = settings
        self._query_ids = itertools.count(1)

    # ------------------------------------------------------------------------------------------- helpers

    def _user_conv(self, bot: Bot, user: User) -> Conversation:
        if bot.id in user.blocked_bots:
            self.block(user.id, False, bot.id)
        user.started_bots.add(bot.id)
        conv = self.state.conversation(bot, user.id)
        assert conv is not None
        self.state.refresh_private_chat(conv)
        return conv

    def _bot(self, bot_id: int | None) -> Bot:
        try:
            return self.state.default_bot(bot_id)
        except KeyError as exc:
            raise ActionError(str(exc.args[0])) from None

    def _reply(self, conv: Conversation, reply_to_message_id: int | None) -> Json:
        if reply_to_message_id is None:
            return {}
        stored = conv.messages.get(int(reply_to_message_id))
        if stored is None:
            raise ActionError("message to be replied not found")
        return {"reply_to_message": {k: v for k, v in stored.message.items() if k != "reply_to_message"}}

    # ------------------------------------------------------------------------------------------- actions

    def add_user(
        self,
        user_id: int,
        first_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
        last_name: str | None = None,
        *,
        started: bool = True,
        bot_id: int | None = None,
    ) -> User:
        user = self.state.ensure_user(int(user_id), first_name, username, language_code, last_name)
        if started:
            bots = [self._bot(bot_id)] if bot_id is not None else list(self.state.bots.values())
            user.started_bots.update(bot.id for bot in bots)
        return user

    def send(
        self,
        user_id: int,
        text: str,
        *,
        bot_id: int | None = None,
        first_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
        reply_to_message_id: int | None = None,
        entities: list[Json] | None = None,
    ) -> Sent:
        bot = self._bot(bot_id)
        user = self.state.ensure_user(int(user_id), first_name, username, language_code)
        clean, found = finalize(str(text), list(entities or []))
        if not clean:
            raise ActionError("message text is empty")
        if utf16_len(clean) > 4096:
            raise ActionError("message is too long")
        conv = self._user_conv(bot, user)
        fields = self._reply(conv, reply_to_message_id)
        fields["text"] = clean
        if found:
            fields["entities"] = found
        self._hide_one_time_keyboard(conv, clean)
        message = self.state.store_message(conv, user, fields)
        return Sent(self.state.enqueue_update(bot, "message", message), message)

    def _hide_one_time_keyboard(self, conv: Conversation, text: str) -> None:
        keyboard = conv.reply_keyboard
        if keyboard and keyboard.get("one_time_keyboard"):
            labels = {b.get("text") for row in keyboard.get("keyboard", []) for b in row}
            if text in labels:
                conv.reply_keyboard = None

    def edit(self, user_id: int, message_id: int, text: str, *, bot_id: int | None = None) -> int | None:
        bot = self._bot(bot_id)
        user = self.state.ensure_user(int(user_id))
        conv = self._user_conv(bot, user)
        stored = conv.messages.get(int(message_id))
        if stored is None or stored.sender_id != user.id:
            raise ActionError("message to edit not found")
        clean, found = finalize(str(text), [])
        if not clean:
            raise ActionError("message text is empty")
        if "text" not in stored.message:
            raise ActionError("there is no text in the message to edit")
        message = {k: v for k, v in stored.message.items() if k != "entities"}
        message["text"] = clean
        if found:
            message["entities"] = found
        message["edit_date"] = self.state.now()
        self.state.replace_message(conv, stored, message)
        return self.state.enqueue_update(bot, "edited_message", message)

    def press(
        self,
        user_id: int,
        message_id: int,
        callback_data: str,
        *,
        bot_id: int | None = None,
        chat_id: int | None = None,
    ) -> tuple[int | None, str]:
        """Press an inline button of a bot message in the user's private chat or, with ``chat_id``, in a
        group or channel the user is in (the query goes to the bot that sent the message)."""
        user = self.state.ensure_user(int(user_id))
        if chat_id is not None and chat_id != user.id:
            chat = self.state.chats.get(int(chat_id))
            if chat is None or not (chat.is_member(user.id) or chat.username):
                raise ActionError("the user is not in that chat")
            conv = self.state.chat_conversation(chat)
            stored = conv.messages.get(int(message_id))
            if stored is None or stored.sender_id not in self.state.bots:
                raise ActionError("message not found")
            bot = self.state.bots[stored.sender_id]
        else:
            bot = self._bot(bot_id)
            conv = self._user_conv(bot, user)
            stored = conv.messages.get(int(message_id))
        if stored is None:
            raise ActionError("message not found")
        markup = stored.message.get("reply_markup") or {}
        datas = {b.get("callback_data") for row in markup.get("inline_keyboard", []) for b in row}
        if callback_data not in datas:
            raise ActionError(f"the message has no inline button with callback_data {callback_data!r}")
        query_id = str((bot.id % 1_000_000) * 10**12 + next(self._query_ids))
        bot.callback_queries[query_id] = CallbackQueryRecord(
            id=query_id,
            bot_id=bot.id,
            user_id=user.id,
            chat_id=conv.chat.id,
            message_id=stored.message["message_id"],
            data=callback_data,
            created=time.monotonic(),
        )
        query = {
            "id": query_id,
            "from": user.to_api(),
            "message": stored.message,
            "chat_instance": chat_instance(bot.id, conv.chat.id),
            "data": callback_data,
        }
        return self.state.enqueue_update(bot, "callback_query", query), query_id

    def upload(
        self,
        user_id: int,
        kind: str,
        data: bytes,
        filename: str | None = None,
        *,
        duration: int | None = None,
        caption: str | None = None,
        mime_type: str | None = None,
        bot_id: int | None = None,
    ) -> Sent:
        if kind not in UPLOAD_KINDS:
            raise ActionError(f"unknown kind {kind!r}; use one of {sorted(UPLOAD_KINDS)}")
        bot = self._bot(bot_id)
        user = self.state.ensure_user(int(user_id))
        try:
            record = store_upload(
                self.state, kind, Upload(filename, data, mime_type), duration=duration, mime_type=mime_type
            )
        except Exception as exc:  # ApiError from photo validation
            raise ActionError(str(exc)) from None
        conv = self._user_conv(bot, user)
        fields: Json = {kind: media_object(record, kind)}
        if caption:
            text, entities = finalize(caption, [])
            if text:
                fields["caption"] = text
                if entities:
                    fields["caption_entities"] = entities
        message = self.state.store_message(conv, user, fields, file_ids=(record.file_id,))
        return Sent(self.state.enqueue_update(bot, "message", message), message)

    def raw_update(self, update: Json, *, bot_id: int | None = None) -> int:
        if not isinstance(update, dict) or not update:
            raise ActionError("update must be a non-empty object")
        return self.state.enqueue_raw(self._bot(bot_id), update)

    # ------------------------------------------------------------------------------------------- payments

    def find_invoice(
        self, bot: Bot, user: User, message_id: int | None, link: str | None
    ) -> tuple[Conversation, InvoiceRecord]:
        conv = self._user_conv(bot, user)
        if link:
            invoice = bot.payments.links.get(link_slug(str(link)))
            if invoice is None:
                raise ActionError("invoice link not found")
            return conv, invoice
        if message_id is None:
            raise ActionError("message_id or link is required")
        stored = conv.messages.get(int(message_id))
        if stored is None:
            raise ActionError("message not found")
        invoice = bot.payments.invoices.get((conv.chat.id, int(message_id)))
        if invoice is None or "invoice" not in stored.message:
            raise ActionError("the message is not an invoice")
        return conv, invoice

    def _order_info(self, invoice: InvoiceRecord, user: User, given: Json | None) -> Json | None:
        if invoice.is_stars:
            return None
        info: Json = {}
        if invoice.need_name:
            info["name"] = " ".join(filter(None, [user.first_name, user.last_name]))
        if invoice.need_phone_number:
            info["phone_number"] = f"1555{user.id % 10_000_000:07d}"
        if invoice.need_email:
            info["email"] = f"user{user.id}@example.com"
        if invoice.need_shipping_address:
            info["shipping_address"] = {
                "country_code": "US",
                "state": "CA",
                "city": "San Francisco",
                "street_line1": "1 Market St",
                "street_line2": "",
                "post_code": "94105",
            }
        if given:
            info.update(given)
        return info or None

    async def pay(
        self,
        user_id: int,
        message_id: int | None = None,
        *,
        link: str | None = None,
        bot_id: int | None = None,
        tip_amount: int = 0,
        order_info: Json | None = None,
    ) -> PaymentOutcome:
        """The user pays an invoice message (or invoice link): pre-checkout query, then successful_payment.

        Waits until the bot answers the pre-checkout query or ``pre_checkout_timeout`` passes.
        """
        bot = self._bot(bot_id)
        user = self.state.ensure_user(int(user_id))
        conv, invoice = self.find_invoice(bot, user, message_id, link)
        tip = int(tip_amount or 0)
        if tip:
            if invoice.is_stars:
                raise ActionError("tips are not supported for payments in Telegram Stars")
            if not 0 < tip <= invoice.max_tip_amount:
                raise ActionError(f"the tip must be between 1 and max_tip_amount ({invoice.max_tip_amount})")
        if invoice.is_flexible:
            raise ActionError("flexible invoices need shipping queries, which the emulator does not send")
        ledger = bot.payments
        number = ledger.next_number()
        total = invoice.total_amount + tip
        info = self._order_info(invoice, user, order_info)
        query = PreCheckoutRecord(
            id=str((bot.id % 1_000_000) * 10**12 + 500_000_000_000 + number),
            bot_id=bot.id,
            user_id=user.id,
            invoice=invoice,
            total_amount=total,
            created=time.monotonic(),
            date=self.state.now(),
            order_info=info,
        )
        ledger.queries[query.id] = query
        payload: Json = {
            "id": query.id,
            "from": user.to_api(),
            "currency": invoice.currency,
            "total_amount": total,
            "invoice_payload": invoice.payload,
        }
        if info:
            payload["order_info"] = info
        query.update_id = self.state.enqueue_update(bot, "pre_checkout_query", payload)
        remaining = query.created + self.settings.pre_checkout_timeout - time.monotonic()
        if not self.state.closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(query.done.wait(), max(remaining, 0.0))
        if query.answered and query.ok:
            query.status = "approved"
            payment = self._complete_payment(bot, conv, user, query, number, info)
            return PaymentOutcome("paid", query, payment)
        if query.answered:
            query.status = "declined"
            outcome = PaymentOutcome("failed", query, reason="declined", error_message=query.error_message)
        else:
            query.status = "cancelled" if self.state.closing else "timeout"
            outcome = PaymentOutcome("failed", query, reason=query.status, error_message=TIMEOUT_ERROR)
        self.state.emit(
            conv,
            "payment",
            status="failed",
            reason=outcome.reason,
            error_message=outcome.error_message,
            pre_checkout_query_id=query.id,
            currency=invoice.currency,
            total_amount=total,
            invoice_message_id=invoice.message_id,
        )
        return outcome

    def _complete_payment(
        self,
        bot: Bot,
        conv: Conversation,
        user: User,
        query: PreCheckoutRecord,
        number: int,
        info: Json | None,
    ) -> PaymentRecord:
        invoice = query.invoice
        telegram_id, provider_id = charge_ids(invoice, number)
        now = self.state.now()
        successful: Json = {
            "currency": invoice.currency,
            "total_amount": query.total_amount,
            "invoice_payload": invoice.payload,
        }
        if invoice.subscription_period:
            successful["subscription_expiration_date"] = now + invoice.subscription_period
            successful["is_recurring"] = True
            successful["is_first_recurring"] = True
        if info:
            successful["order_info"] = info
        successful["telegram_payment_charge_id"] = telegram_id
        successful["provider_payment_charge_id"] = provider_id
        message = self.state.store_message(conv, user, {"successful_payment": successful})
        update_id = self.state.enqueue_update(bot, "message", message)
        payment = PaymentRecord(
            telegram_payment_charge_id=telegram_id,
            provider_payment_charge_id=provider_id,
            bot_id=bot.id,
            user_id=user.id,
            invoice=invoice,
            total_amount=query.total_amount,
            date=now,
            pre_checkout_query_id=query.id,
            successful_payment=successful,
            message=message,
            update=None if update_id is None else {"update_id": update_id, "message": message},
        )
        bot.payments.payments[telegram_id] = payment
        self.state.emit(
            conv,
            "payment",
            status="paid",
            pre_checkout_query_id=query.id,
            telegram_payment_charge_id=telegram_id,
            currency=invoice.currency,
            total_amount=query.total_amount,
            invoice_message_id=invoice.message_id,
            message_id=message["message_id"],
        )
        return payment

    def redeliver_payment(
        self, telegram_payment_charge_id: str, *, same_update_id: bool = True, bot_id: int | None = None
    ) -> int:
        """Send the successful_payment update again: the same update (same update_id) or a new update."""
        bot = self._bot(bot_id)
        payment = bot.payments.payments.get(telegram_payment_charge_id)
        if payment is None:
            raise ActionError("unknown telegram_payment_charge_id")
        if same_update_id:
            if payment.update is None:
                raise ActionError("the successful_payment update was filtered out by allowed_updates")
            return self.state.redeliver(bot, payment.update)
        update_id = self.state.enqueue_update(bot, "message", payment.message, force=True)
        assert update_id is not None
        return update_id

    def redeliver_update(self, update: Json, *, bot_id: int | None = None) -> int:
        if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
            raise ActionError("update must be an object with an integer update_id")
        return self.state.redeliver(self._bot(bot_id), update)

    def block(self, user_id: int, blocked: bool, bot_id: int | None = None) -> int | None:
        """Block or unblock a bot; the bot gets a my_chat_member update as from Telegram."""
        bot = self._bot(bot_id)
        user = self.state.ensure_user(int(user_id))
        if blocked == (bot.id in user.blocked_bots):
            return None
        if blocked:
            user.blocked_bots.add(bot.id)
        else:
            user.blocked_bots.discard(bot.id)
        bot_user = bot.user.to_api()
        member: Json = {"status": "member", "user": bot_user}
        kicked: Json = {"status": "kicked", "user": bot_user, "until_date": 0}
        payload: dict[str, Any] = {
            "chat": self.state.private_chat(user).to_api(),
            "from": user.to_api(),
            "date": self.state.now(),
            "old_chat_member": member if blocked else kicked,
            "new_chat_member": kicked if blocked else member,
        }
        return self.state.enqueue_update(bot, "my_chat_member", payload)


def chat_instance(bot_id: int, chat_id: int) -> str:
    """A stable pseudo-random id of the (bot, chat) pair, like Telegram's ``chat_instance``."""
    value = (bot_id * 0x9E3779B97F4A7C15 ^ chat_id * 0xC2B2AE3D27D4EB4F) & 0x7FFFFFFFFFFFFFFF
    return str(-value)
