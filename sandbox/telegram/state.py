"""In-memory state of the emulator: bots, users, chats, messages, updates, files, chat events.

Everything here is synchronous and runs on the event loop thread; the HTTP layers (``server``, ``methods``,
``control``) call into it. Messages are stored as Bot API dicts and are never mutated once stored: an edit
replaces the dict, so updates and events that captured the old dict keep their snapshot.

Chats are kept per *conversation*: a private chat exists once per (bot, user) pair (its id is the user's id,
as every bot sees it), while groups and channels are shared by all bots (key ``(0, chat_id)``).
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .markup import render_html
from .payments import PaymentLedger

Json = dict[str, Any]

# update types delivered when allowed_updates is empty / never set (Telegram's default)
DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
UPDATE_TYPES = frozenset(
    {
        "message", "edited_message", "channel_post", "edited_channel_post", "business_connection",
        "business_message", "edited_business_message", "deleted_business_messages", "message_reaction",
        "message_reaction_count", "inline_query", "chosen_inline_result", "callback_query", "shipping_query",
        "pre_checkout_query", "purchased_paid_media", "poll", "poll_answer", "my_chat_member", "chat_member",
        "chat_join_request", "chat_boost", "removed_chat_boost",
    }
)  # fmt: skip


@dataclass
class User:
    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    is_bot: bool = False
    started_bots: set[int] = field(default_factory=set)
    blocked_bots: set[int] = field(default_factory=set)

    def to_api(self) -> Json:
        data: Json = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        if self.language_code and not self.is_bot:
            data["language_code"] = self.language_code
        return data


@dataclass
class Chat:
    id: int
    type: str  # "private" | "group" | "supergroup" | "channel"
    title: str | None = None
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    # for groups and channels: user id -> ChatMember dict (status, user, ...); bots are members too
    members: dict[int, Json] = field(default_factory=dict)
    signatures: bool = False  # channels: posts carry author_signature (the author's name)
    description: str | None = None

    @property
    def kind_name(self) -> str:
        """How Telegram's errors name the chat: "channel chat", "supergroup chat", "group chat"."""
        return f"{self.type} chat"

    def is_member(self, user_id: int) -> bool:
        """True if ``user_id`` is in the chat now (creator, administrator, member, or restricted member)."""
        return member_active(self.members.get(user_id))

    def to_api(self) -> Json:
        data: Json = {"id": self.id, "type": self.type}
        for key in ("title", "username", "first_name", "last_name"):
            value = getattr(self, key)
            if value:
                data[key] = value
        return data

    def full_info(self) -> Json:
        data = self.to_api()
        data.update(
            {
                "accent_color_id": abs(self.id) % 7,
                "max_reaction_count": 11,
                "accepted_gift_types": {
                    "unlimited_gifts": False,
                    "limited_gifts": False,
                    "unique_gifts": False,
                    "premium_subscription": False,
                    "gifts_from_channels": False,
                },
            }
        )
        return data


def member_active(member: Json | None) -> bool:
    """Whether a ChatMember dict means "in the chat" (Telegram's left/kicked are out)."""
    if member is None:
        return False
    status = member.get("status")
    if status == "restricted":
        return bool(member.get("is_member"))
    return status in ("creator", "administrator", "member")


@dataclass
class FileRecord:
    file_id: str
    file_unique_id: str
    kind: str  # photo, document, voice, audio, video, video_note, animation, sticker
    data: bytes
    file_path: str
    mime_type: str
    file_name: str | None = None
    width: int | None = None
    height: int | None = None
    duration: int | None = None

    @property
    def file_size(self) -> int:
        return len(self.data)


@dataclass
class CallbackQueryRecord:
    id: str
    bot_id: int
    user_id: int
    chat_id: int
    message_id: int
    data: str | None
    created: float  # monotonic
    answered: bool = False
    text: str | None = None
    show_alert: bool = False
    url: str | None = None

    def to_control(self, expired: bool) -> Json:
        return {
            "callback_query_id": self.id,
            "message_id": self.message_id,
            "data": self.data,
            "text": self.text,
            "show_alert": self.show_alert,
            "url": self.url,
            "answered": self.answered,
            "expired": expired and not self.answered,
        }


class ApiCall(NamedTuple):
    """One Bot API request a bot made (``method`` as the bot spelled it, ``params`` as received)."""

    method: str
    params: Json
    chat_id: int | None
    at: float  # time.monotonic()
    error: str | None = None  # the error description if the call failed


@dataclass
class WebhookConfig:
    url: str
    secret_token: str | None = None
    max_connections: int = 40
    ip_address: str | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None


class Signal:
    """A broadcast "something changed" signal: waiters grab ``wait_handle()`` before checking state."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def wait_handle(self) -> asyncio.Event:
        return self._event

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()


async def wait_signal(handle: asyncio.Event, seconds: float) -> bool:
    """Wait up to ``seconds`` for a signal handle; True if it fired."""
    if seconds <= 0:
        return False
    try:
        await asyncio.wait_for(handle.wait(), seconds)
    except TimeoutError:
        return False
    return True


@dataclass
class Bot:
    user: User
    token: str
    next_update_id: int = 1
    updates: deque[tuple[int, str, Json]] = field(default_factory=deque)  # (update_id, type, update)
    redeliveries: deque[Json] = field(default_factory=deque)  # updates sent again with their old update_id
    allowed_updates: frozenset[str] | None = None
    webhook: WebhookConfig | None = None
    commands: dict[tuple[str, str], list[Json]] = field(default_factory=dict)  # (scope key, language) -> list
    menu_buttons: dict[int | None, Json] = field(default_factory=dict)  # chat id (None: default) -> button
    texts: dict[tuple[str, str], str] = field(
        default_factory=dict
    )  # (name|description|short_description, lang)
    callback_queries: dict[str, CallbackQueryRecord] = field(default_factory=dict)
    calls: list[ApiCall] = field(default_factory=list)
    payments: PaymentLedger = field(default_factory=PaymentLedger)
    updates_signal: Signal = field(default_factory=Signal)
    poll_generation: int = 0
    logged_out: bool = False

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def pending_count(self) -> int:
        return len(self.updates) + len(self.redeliveries)

    def wants(self, update_type: str) -> bool:
        if self.allowed_updates:
            return update_type in self.allowed_updates
        return update_type not in DEFAULT_EXCLUDED_UPDATES


@dataclass
class StoredMessage:
    message: Json  # Bot API Message as it is now (never mutated: replaced on edit)
    sender_id: int
    by_bot: bool
    file_ids: tuple[str, ...] = ()
    reply_keyboard: Json | None = None  # ReplyKeyboardMarkup / ReplyKeyboardRemove / ForceReply it carried


@dataclass
class Conversation:
    """One chat as seen by one bot (private) or by all bots (groups/channels, ``bot_id == 0``)."""

    bot_id: int
    chat: Chat
    next_message_id: int = 1
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    events: list[Json] = field(default_factory=list)
    event_seqs: list[int] = field(default_factory=list)
    reply_keyboard: Json | None = None  # the reply keyboard currently shown to the user
    signal: Signal = field(default_factory=Signal)

    def events_since(self, since: int, limit: int) -> list[Json]:
        start = bisect.bisect_right(self.event_seqs, since)
        return self.events[start : start + limit]


@dataclass
class Fault:
    method: str  # lower case, "*" for any
    bot_id: int | None
    error_code: int
    description: str
    retry_after: int | None
    times: int
    delay: float = 0.0


FILE_ID_PREFIX = {
    "photo": "AgACAgIAAxkBAA",
    "document": "BQACAgIAAxkBAA",
    "voice": "AwACAgIAAxkBAA",
    "audio": "CQACAgIAAxkBAA",
    "video": "BAACAgIAAxkBAA",
    "video_note": "DQACAgIAAxkBAA",
    "animation": "CgACAgIAAxkBAA",
    "sticker": "CAACAgIAAxkBAA",
}
FILE_DIRS = {
    "photo": "photos",
    "document": "documents",
    "voice": "voice",
    "audio": "music",
    "video": "videos",
    "video_note": "video_notes",
    "animation": "animations",
    "sticker": "stickers",
}


class State:
    """All emulator data. ``clock`` gives Unix time for message dates (tests may freeze it)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.bots: dict[int, Bot] = {}
        self.tokens: dict[str, Bot] = {}
        self.users: dict[int, User] = {}
        self.chats: dict[int, Chat] = {}  # groups and channels (private chats are derived from users)
        self.conversations: dict[tuple[int, int], Conversation] = {}
        self.files: dict[str, FileRecord] = {}
        self.files_by_path: dict[str, FileRecord] = {}
        self.seq = 0
        self.closing = False  # set by stop(): long polls answer at once
        self._ids = itertools.count(1)

    def now(self) -> int:
        return int(self.clock())

    def wake_all(self) -> None:
        """Wake every long poll (used when the server stops)."""
        for bot in self.bots.values():
            bot.updates_signal.fire()
            for query in bot.payments.queries.values():
                query.done.set()
        for conv in self.conversations.values():
            conv.signal.fire()

    # ------------------------------------------------------------------------------------------- bots

    def add_bot(self, username: str, first_name: str | None, token: str | None, bot_id: int | None) -> Bot:
        if token is not None:
            head, _, secret = token.partition(":")
            if not head.isdigit() or not secret:
                raise ValueError("a bot token looks like '<bot_id>:<secret>'")
            bot_id = int(head)
        if bot_id is None:
            bot_id = 7_000_000_000 + len(self.bots) + 1
            while bot_id in self.bots or bot_id in self.users:
                bot_id += 1
        if token is None:
            token = f"{bot_id}:{secrets.token_urlsafe(26)[:35]}"
        if bot_id in self.bots:
            raise ValueError(f"bot {bot_id} already exists")
        user = User(
            id=bot_id, first_name=first_name or username.removesuffix("_bot").title(), username=username
        )
        user.is_bot = True
        bot = Bot(user=user, token=token)
        self.bots[bot_id] = bot
        self.tokens[token] = bot
        return bot

    def default_bot(self, bot_id: int | None = None) -> Bot:
        if bot_id is not None:
            bot = self.bots.get(int(bot_id))
            if bot is None:
                raise KeyError(f"unknown bot {bot_id}")
            return bot
        if not self.bots:
            raise KeyError("no bot has been added to the emulator")
        return next(iter(self.bots.values()))

    # ------------------------------------------------------------------------------------------- users

    def ensure_user(
        self,
        user_id: int,
        first_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
        last_name: str | None = None,
    ) -> User:
        user = self.users.get(user_id)
        if user is None:
            user = User(id=user_id, first_name=first_name or f"User{user_id}")
            self.users[user_id] = user
        elif first_name:
            user.first_name = first_name
        if username is not None:
            user.username = username or None
        if language_code is not None:
            user.language_code = language_code or None
        if last_name is not None:
            user.last_name = last_name or None
        return user

    # ------------------------------------------------------------------------------------------- chats

    def private_chat(self, user: User) -> Chat:
        return Chat(
            id=user.id,
            type="private",
            first_name=user.first_name,
            last_name=user.last_name,
            username=user.username,
        )

    def conversation(self, bot: Bot, chat_id: int) -> Conversation | None:
        """The conversation ``bot`` has with ``chat_id``, created for known users; None if unknown."""
        if chat_id > 0:
            key = (bot.id, chat_id)
            conv = self.conversations.get(key)
            if conv is None:
                user = self.users.get(chat_id)
                if user is None:
                    return None
                conv = Conversation(bot_id=bot.id, chat=self.private_chat(user))
                self.conversations[key] = conv
            return conv
        chat = self.chats.get(chat_id)
        if chat is None or not chat.is_member(bot.id):
            return None
        return self.chat_conversation(chat)

    def chat_conversation(self, chat: Chat) -> Conversation:
        """The shared conversation of a group or channel (whoever reads it)."""
        key = (0, chat.id)
        conv = self.conversations.get(key)
        if conv is None:
            conv = Conversation(bot_id=0, chat=chat)
            self.conversations[key] = conv
        return conv

    def sender_of(self, sender_id: int) -> User | None:
        bot = self.bots.get(sender_id)
        return bot.user if bot is not None else self.users.get(sender_id)

    def refresh_private_chat(self, conv: Conversation) -> None:
        user = self.users.get(conv.chat.id)
        if user is not None and conv.chat.type == "private":
            conv.chat = self.private_chat(user)

    # ------------------------------------------------------------------------------------------- messages

    def store_message(
        self,
        conv: Conversation,
        sender: User,
        fields: Json,
        *,
        file_ids: tuple[str, ...] = (),
        reply_keyboard: Json | None = None,
        sender_chat: Chat | None = None,
    ) -> Json:
        """Create a message in ``conv`` from ``sender``, store it and emit a chat event; returns it.

        In a channel every post is the channel's (``sender_chat``, no ``from``), signed with the author's
        name when the channel's signatures are on."""
        message_id = conv.next_message_id
        conv.next_message_id += 1
        message: Json = {"message_id": message_id}
        if sender_chat is None and conv.chat.type == "channel":
            sender_chat = conv.chat
        if sender_chat is not None:
            message["sender_chat"] = sender_chat.to_api()
        else:
            message["from"] = sender.to_api()
        message["chat"] = conv.chat.to_api()
        message["date"] = self.now()
        if conv.chat.type == "channel" and conv.chat.signatures:
            message["author_signature"] = " ".join(filter(None, [sender.first_name, sender.last_name]))
        message.update(fields)
        conv.messages[message_id] = StoredMessage(message, sender.id, sender.is_bot, file_ids, reply_keyboard)
        if reply_keyboard is not None:
            conv.reply_keyboard = None if reply_keyboard.get("remove_keyboard") else reply_keyboard
        self.emit(conv, "message", message=self.display(message, reply_keyboard, sender.id))
        return message

    def replace_message(self, conv: Conversation, stored: StoredMessage, message: Json) -> None:
        stored.message = message
        self.emit(conv, "edit", message=self.display(message, None, stored.sender_id))

    def display_stored(self, stored: StoredMessage) -> Json:
        return self.display(stored.message, stored.reply_keyboard, stored.sender_id)

    def delete_message(self, conv: Conversation, message_id: int) -> bool:
        if conv.messages.pop(message_id, None) is None:
            return False
        self.emit(conv, "delete", message_id=message_id)
        return True

    def display(self, message: Json, reply_keyboard: Json | None, sender_id: int | None = None) -> Json:
        """The message plus emulator-only fields for the web chat: html, file_url, reply_keyboard and, for
        posts sent as a chat (no ``from``), ``posted_by``: the user or bot who really posted it."""
        shown = dict(message)
        if "from" not in message and sender_id is not None:
            poster = self.sender_of(sender_id)
            if poster is not None:
                shown["posted_by"] = poster.to_api()
        if "text" in message:
            shown["html"] = render_html(message["text"], message.get("entities"))
        elif "caption" in message:
            shown["html"] = render_html(message["caption"], message.get("caption_entities"))
        file_id = file_id_of(message)
        if file_id is not None:
            shown["file_url"] = f"/sandbox/files/{file_id}"
        if reply_keyboard is not None:
            shown["reply_keyboard"] = reply_keyboard
        return shown

    def emit(self, conv: Conversation, event_type: str, **payload: Any) -> Json:
        self.seq += 1
        event: Json = {"seq": self.seq, "type": event_type, **payload}
        conv.events.append(event)
        conv.event_seqs.append(self.seq)
        conv.signal.fire()
        return event

    # ------------------------------------------------------------------------------------------- updates

    def enqueue_update(self, bot: Bot, update_type: str, payload: Any, *, force: bool = False) -> int | None:
        """Queue an update for ``bot``; None if the bot's allowed_updates filter drops it."""
        if not force and not bot.wants(update_type):
            return None
        update_id = bot.next_update_id
        bot.next_update_id += 1
        bot.updates.append((update_id, update_type, {"update_id": update_id, update_type: payload}))
        bot.updates_signal.fire()
        return update_id

    def enqueue_raw(self, bot: Bot, update: Json) -> int:
        update = {k: v for k, v in update.items() if k != "update_id"}
        kinds = [k for k in update if k in UPDATE_TYPES]
        update_type = kinds[0] if kinds else next(iter(update), "unknown")
        update_id = bot.next_update_id
        bot.next_update_id += 1
        bot.updates.append((update_id, update_type, {"update_id": update_id, **update}))
        bot.updates_signal.fire()
        return update_id

    def redeliver(self, bot: Bot, update: Json) -> int:
        """Deliver an update again, unchanged (same update_id), as Telegram does after a failed delivery."""
        if not isinstance(update.get("update_id"), int):
            raise ValueError("the update has no update_id")
        bot.redeliveries.append(dict(update))
        bot.updates_signal.fire()
        return int(update["update_id"])

    def confirm_updates(self, bot: Bot, offset: int) -> None:
        updates = bot.updates
        if offset < 0:
            keep = -offset
            while len(updates) > keep:
                updates.popleft()
            return
        while updates and updates[0][0] < offset:
            updates.popleft()

    # ------------------------------------------------------------------------------------------- files

    def add_file(
        self,
        kind: str,
        data: bytes,
        *,
        mime_type: str,
        extension: str,
        file_name: str | None = None,
        width: int | None = None,
        height: int | None = None,
        duration: int | None = None,
    ) -> FileRecord:
        number = next(self._ids)
        token = secrets.token_urlsafe(24)
        file_id = f"{FILE_ID_PREFIX.get(kind, 'BQACAgIAAxkBAA')}{number:06d}{token}"
        unique = f"AQAD{number:06d}{token[:8]}"
        path = f"{FILE_DIRS.get(kind, 'documents')}/file_{number}.{extension}"
        record = FileRecord(file_id, unique, kind, data, path, mime_type, file_name, width, height, duration)
        self.files[file_id] = record
        self.files_by_path[path] = record
        return record


MEDIA_KINDS = ("photo", "document", "voice", "audio", "video", "video_note", "animation", "sticker")


def file_id_of(message: Json) -> str | None:
    """The file_id of the media in a message (the largest photo size for photos)."""
    for kind in MEDIA_KINDS:
        media = message.get(kind)
        if media is None:
            continue
        if isinstance(media, list):
            return str(media[-1]["file_id"]) if media else None
        return str(media["file_id"])
    return None
