"""What users do: send and edit messages, press inline buttons, upload files, block bots.

Each action stores what the user did in the chat and queues the update Telegram would send to the bot.
Used by the control API (``control.py``) and directly by :class:`~sandbox.telegram.TelegramEmulator`.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

from .api import Settings
from .api_media import media_object, store_upload
from .markup import finalize, utf16_len
from .params import Upload
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
        self, user_id: int, message_id: int, callback_data: str, *, bot_id: int | None = None
    ) -> tuple[int | None, str]:
        bot = self._bot(bot_id)
        user = self.state.ensure_user(int(user_id))
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
