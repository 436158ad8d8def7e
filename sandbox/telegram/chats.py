"""Groups and channels as users live them: create one, add and remove members, promote the bot (or take
its rights away), post as the channel or write in a group, edit a post, open a t.me deep link.

Each change queues the updates Telegram would send: ``my_chat_member`` to a bot whose own membership
changed, ``chat_member`` to the bots that administer the chat (when their ``allowed_updates`` ask for it),
``new_chat_members`` / ``left_chat_member`` service messages in groups, ``channel_post`` /
``edited_channel_post`` to the bots in a channel and ``message`` / ``edited_message`` in groups (bots that
are not administrators see, as in privacy mode, only commands, replies to them and mentions of them).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from .actions import ActionError, Sent, UserActions
from .markup import finalize, utf16_len
from .state import Bot, Chat, Conversation, Json, State, StoredMessage, User, member_active

CHAT_TYPES = ("channel", "supergroup", "group")
STATUSES = ("creator", "administrator", "member", "restricted", "left", "kicked")
# ChatMemberAdministrator rights every chat has, with what a fresh promotion grants by default
COMMON_RIGHTS: dict[str, bool] = {
    "can_manage_chat": True,
    "can_delete_messages": True,
    "can_manage_video_chats": True,
    "can_restrict_members": True,
    "can_promote_members": False,
    "can_change_info": True,
    "can_invite_users": True,
    "can_post_stories": True,
    "can_edit_stories": True,
    "can_delete_stories": True,
    "can_send_welcome_messages": False,
}
CHANNEL_RIGHTS: dict[str, bool] = {
    "can_post_messages": True,
    "can_edit_messages": True,
    "can_manage_direct_messages": False,
}
GROUP_RIGHTS: dict[str, bool] = {"can_pin_messages": True}
SUPERGROUP_RIGHTS: dict[str, bool] = {"can_pin_messages": True, "can_manage_topics": False}
# ChatMemberRestricted permissions (all false unless given)
RESTRICTED_RIGHTS = (
    "can_send_messages", "can_send_audios", "can_send_documents", "can_send_photos", "can_send_videos",
    "can_send_video_notes", "can_send_voice_notes", "can_send_polls", "can_send_other_messages",
    "can_add_web_page_previews", "can_react_to_messages", "can_edit_tag", "can_change_info",
    "can_invite_users", "can_pin_messages", "can_manage_topics",
)  # fmt: skip
_START_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_LINK_HOSTS = ("t.me", "telegram.me", "telegram.dog", "www.t.me")


class ChatError(ActionError):
    """A chat action the emulator refuses (the control API answers 400)."""


def admin_rights(chat_type: str, given: Json | None = None) -> Json:
    """The ``can_*`` fields of a ChatMemberAdministrator in a chat of ``chat_type``, defaults + ``given``."""
    extra = {"channel": CHANNEL_RIGHTS, "supergroup": SUPERGROUP_RIGHTS}.get(chat_type, GROUP_RIGHTS)
    rights = {**COMMON_RIGHTS, **extra}
    for key, value in (given or {}).items():
        if key not in rights:
            raise ChatError(
                f"{key} is not an administrator right in a {chat_type}; use one of {sorted(rights)}"
            )
        rights[key] = bool(value)
    return rights


def member_object(
    chat: Chat,
    user: User,
    status: str,
    rights: Json | None = None,
    *,
    custom_title: str | None = None,
    until_date: int | None = None,
) -> Json:
    """A ChatMember of Telegram's shape for ``status`` (ChatMemberOwner, ...Administrator, ...Banned...)."""
    data: Json = {"status": status, "user": user.to_api()}
    if status == "creator":
        data["is_anonymous"] = False
    elif status == "administrator":
        data["can_be_edited"] = False
        data["is_anonymous"] = False
        data.update(admin_rights(chat.type, rights))
    elif status == "member":
        if until_date:
            data["until_date"] = until_date
    elif status == "restricted":
        given = dict(rights or {})
        unknown = set(given) - set(RESTRICTED_RIGHTS) - {"is_member"}
        if unknown:
            raise ChatError(f"unknown permissions {sorted(unknown)}; use {list(RESTRICTED_RIGHTS)}")
        data["is_member"] = bool(given.pop("is_member", True))
        data.update({key: bool(given.get(key, False)) for key in RESTRICTED_RIGHTS})
        data["until_date"] = until_date or 0
    elif status == "kicked":
        data["until_date"] = until_date or 0
    elif status != "left":
        raise ChatError(f"unknown status {status!r}; use one of {list(STATUSES)}")
    if custom_title and status in ("creator", "administrator"):
        data["custom_title"] = custom_title
    return data


@dataclass
class Delivery:
    """What a chat action did: the message it stored (if any) and the update id each bot got."""

    message: Json | None = None
    updates: dict[int, int | None] = field(default_factory=dict)  # bot id -> update id (None: filtered)

    def to_control(self, shown: Json | None) -> Json:
        return {"message": shown, "updates": {str(k): v for k, v in self.updates.items()}}


class ChatActions:
    def __init__(self, state: State, users: UserActions) -> None:
        self.state = state
        self.users = users
        self._ids = itertools.count(1)

    # ------------------------------------------------------------------------------------------ lookups

    def chat(self, chat_id: int | str) -> Chat:
        if isinstance(chat_id, str) and not chat_id.lstrip("-").isdigit():
            name = chat_id.removeprefix("@").lower()
            found = next((c for c in self.state.chats.values() if (c.username or "").lower() == name), None)
            if found is None:
                raise ChatError(f"no chat @{name}")
            return found
        chat = self.state.chats.get(int(chat_id))
        if chat is None:
            raise ChatError(f"chat {chat_id} not found")
        return chat

    def _person(self, user_id: int) -> User:
        bot = self.state.bots.get(int(user_id))
        return bot.user if bot is not None else self.state.ensure_user(int(user_id))

    def _new_chat_id(self, chat_type: str) -> int:
        while True:
            n = next(self._ids)
            chat_id = -(1_002_000_000_000 + n) if chat_type != "group" else -(4_000_000_000 + n)
            if chat_id not in self.state.chats:
                return chat_id

    # ------------------------------------------------------------------------------------------ chats

    def create(
        self,
        chat_type: str,
        title: str,
        owner_id: int,
        *,
        username: str | None = None,
        chat_id: int | None = None,
        signatures: bool = False,
        description: str | None = None,
    ) -> Chat:
        """A new group, supergroup or channel owned (``creator``) by ``owner_id``; no bot is in it yet."""
        if chat_type not in CHAT_TYPES:
            raise ChatError(f"type must be one of {list(CHAT_TYPES)}")
        title = (title or "").strip()
        if not 1 <= len(title) <= 128:
            raise ChatError("the title must be 1-128 characters")
        if chat_id is None:
            chat_id = self._new_chat_id(chat_type)
        elif chat_id >= 0:
            raise ChatError("group and channel ids are negative")
        if chat_id in self.state.chats:
            raise ChatError(f"chat {chat_id} already exists")
        if username:
            username = username.removeprefix("@")
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{3,31}", username):
                raise ChatError("a username is 4-32 characters: letters, digits and underscores")
            taken = {(c.username or "").lower() for c in self.state.chats.values()}
            taken |= {(b.user.username or "").lower() for b in self.state.bots.values()}
            if username.lower() in taken:
                raise ChatError(f"the username @{username} is taken")
        if owner_id in self.state.bots:
            raise ChatError("a bot cannot create chats")
        owner = self.state.ensure_user(int(owner_id))
        chat = Chat(
            id=chat_id,
            type=chat_type,
            title=title,
            username=username or None,
            signatures=signatures and chat_type == "channel",
            description=description or None,
        )
        chat.members[owner.id] = member_object(chat, owner, "creator")
        self.state.chats[chat_id] = chat
        self.state.chat_conversation(chat)
        return chat

    def chats_of(self, user_id: int | None) -> list[Json]:
        """The groups and channels a user is in (every chat when ``user_id`` is None), newest first."""
        found = []
        for chat in reversed(list(self.state.chats.values())):
            member = chat.members.get(user_id) if user_id is not None else None
            if user_id is not None and not member_active(member):
                continue
            found.append(self.describe(chat, user_id))
        return found

    def describe(self, chat: Chat, user_id: int | None = None) -> Json:
        """A chat for the control API: the Chat, its members, and what ``user_id`` may do there."""
        conv = self.state.chat_conversation(chat)
        member = chat.members.get(user_id) if user_id is not None else None
        last = next(reversed(conv.messages.values()), None)
        return {
            "chat": chat.to_api(),
            "signatures": chat.signatures,
            "member_count": sum(1 for m in chat.members.values() if member_active(m)),
            "members": list(chat.members.values()),
            "bots": [
                {"id": bot_id, "status": m.get("status"), "can_post_messages": m.get("can_post_messages")}
                for bot_id, m in chat.members.items()
                if bot_id in self.state.bots
            ],
            "status": member.get("status") if member else None,
            "can_post": user_id is not None and self.can_post(chat, user_id),
            "last_message": None if last is None else self.state.display_stored(last),
        }

    def can_post(self, chat: Chat, user_id: int) -> bool:
        member = chat.members.get(user_id)
        if not member_active(member):
            return False
        assert member is not None
        if chat.type == "channel":
            return member["status"] == "creator" or bool(
                member["status"] == "administrator" and member.get("can_post_messages")
            )
        if member["status"] == "restricted":
            return bool(member.get("can_send_messages"))
        return True

    # ------------------------------------------------------------------------------------------ members

    def set_member(
        self,
        chat_id: int | str,
        user_id: int,
        status: str,
        *,
        rights: Json | None = None,
        by: int | None = None,
        custom_title: str | None = None,
        until_date: int | None = None,
    ) -> Delivery:
        """Add, promote, restrict, demote or remove a user or a bot; returns the updates sent to bots.

        ``by`` is who did it (default: the chat's owner; the user himself for joining and leaving).
        """
        chat = self.chat(chat_id)
        if status not in STATUSES:
            raise ChatError(f"status must be one of {list(STATUSES)}")
        person = self._person(user_id)
        old = chat.members.get(person.id) or member_object(chat, person, "left")
        if old.get("status") == "creator" and status != "creator":
            raise ChatError("the owner cannot be demoted or removed (transfer the chat first)")
        if status == "creator" and old.get("status") != "creator":
            raise ChatError("a chat has one owner, set when it is created")
        if person.is_bot and chat.type == "channel" and status in ("member", "restricted"):
            raise ChatError("bots can only be added to channels as administrators")
        new = member_object(chat, person, status, rights, custom_title=custom_title, until_date=until_date)
        if old == new:
            return Delivery()
        actor = self._actor(chat, person, by, joining=status == "member" and not member_active(old))
        chat.members[person.id] = new
        delivery = Delivery()
        payload: Json = {
            "chat": chat.to_api(),
            "from": actor.to_api(),
            "date": self.state.now(),
            "old_chat_member": old,
            "new_chat_member": new,
        }
        if person.is_bot:
            delivery.updates[person.id] = self.state.enqueue_update(
                self.state.bots[person.id], "my_chat_member", payload
            )
        for bot in self._bots_in(chat, admins_only=True):
            if bot.id != person.id:
                delivery.updates[bot.id] = self.state.enqueue_update(bot, "chat_member", payload)
        if chat.type != "channel":
            joined, left = (
                not member_active(old) and member_active(new),
                member_active(old) and not member_active(new),
            )
            if joined or left:
                delivery.message = self._service(chat, actor, person, joined, delivery)
        return delivery

    def _actor(self, chat: Chat, person: User, by: int | None, *, joining: bool) -> User:
        if by is not None:
            return self._person(by)
        if joining and not person.is_bot:
            return person
        owner = next((m for m in chat.members.values() if m.get("status") == "creator"), None)
        return self._person(int(owner["user"]["id"])) if owner else person

    def _service(self, chat: Chat, actor: User, person: User, joined: bool, delivery: Delivery) -> Json:
        conv = self.state.chat_conversation(chat)
        fields: Json = (
            {"new_chat_members": [person.to_api()]} if joined else {"left_chat_member": person.to_api()}
        )
        message = self.state.store_message(conv, actor, fields)
        for bot in self._bots_in(chat):
            delivery.updates.setdefault(bot.id, self.state.enqueue_update(bot, "message", message))
        return message

    def _bots_in(self, chat: Chat, *, admins_only: bool = False) -> list[Bot]:
        found = []
        for bot_id, member in chat.members.items():
            bot = self.state.bots.get(bot_id)
            if bot is None or not member_active(member):
                continue
            if admins_only and member.get("status") not in ("creator", "administrator"):
                continue
            found.append(bot)
        return found

    # ------------------------------------------------------------------------------------------ posts

    def post(
        self,
        chat_id: int | str,
        user_id: int,
        text: str,
        *,
        reply_to_message_id: int | None = None,
    ) -> Delivery:
        """A user posts in a channel (as the channel: ``channel_post``) or writes in a group (``message``)."""
        chat = self.chat(chat_id)
        user = self.state.ensure_user(int(user_id))
        if not self.can_post(chat, user.id):
            if chat.type == "channel":
                raise ChatError(
                    "only the channel's owner and administrators with can_post_messages post there"
                )
            raise ChatError("the user is not a member of the chat (or may not send messages)")
        clean, entities = finalize(str(text), [])
        if not clean:
            raise ChatError("message text is empty")
        if utf16_len(clean) > 4096:
            raise ChatError("message is too long")
        conv = self.state.chat_conversation(chat)
        fields: Json = {}
        if reply_to_message_id is not None:
            stored = conv.messages.get(int(reply_to_message_id))
            if stored is None:
                raise ChatError("message to be replied not found")
            fields["reply_to_message"] = {k: v for k, v in stored.message.items() if k != "reply_to_message"}
        fields["text"] = clean
        if entities:
            fields["entities"] = entities
        message = self.state.store_message(conv, user, fields)
        return Delivery(message, self._deliver(chat, message, edited=False))

    def edit_post(self, chat_id: int | str, user_id: int, message_id: int, text: str) -> Delivery:
        """The author (or, in a channel, an administrator with can_edit_messages) edits a post."""
        chat = self.chat(chat_id)
        user = self.state.ensure_user(int(user_id))
        conv = self.state.chat_conversation(chat)
        stored = conv.messages.get(int(message_id))
        if stored is None:
            raise ChatError("message to edit not found")
        member = chat.members.get(user.id) or {}
        editor = member.get("status") == "creator" or (
            chat.type == "channel"
            and member.get("status") == "administrator"
            and member.get("can_edit_messages")
        )
        if stored.sender_id != user.id and not (editor and not stored.by_bot):
            raise ChatError("message can't be edited")
        if "text" not in stored.message:
            raise ChatError("there is no text in the message to edit")
        clean, entities = finalize(str(text), [])
        if not clean:
            raise ChatError("message text is empty")
        message = {k: v for k, v in stored.message.items() if k != "entities"}
        message["text"] = clean
        if entities:
            message["entities"] = entities
        message["edit_date"] = self.state.now()
        self.state.replace_message(conv, stored, message)
        if stored.by_bot:
            return Delivery(message)  # a bot gets no update about bot messages
        return Delivery(message, self._deliver(chat, message, edited=True))

    def _deliver(self, chat: Chat, message: Json, *, edited: bool) -> dict[int, int | None]:
        if chat.type == "channel":
            kind = "edited_channel_post" if edited else "channel_post"
        else:
            kind = "edited_message" if edited else "message"
        updates: dict[int, int | None] = {}
        for bot in self._bots_in(chat):
            if chat.type != "channel" and not self._sees(bot, chat.members[bot.id], message):
                continue
            updates[bot.id] = self.state.enqueue_update(bot, kind, message)
        return updates

    @staticmethod
    def _sees(bot: Bot, member: Json, message: Json) -> bool:
        """Privacy mode (getMe's can_read_all_group_messages is false): administrators see every message;
        other bots see commands (not addressed to another bot), replies to them and mentions of them."""
        if member.get("status") in ("creator", "administrator"):
            return True
        text = str(message.get("text") or message.get("caption") or "")
        name = (bot.user.username or "").lower()
        if text.startswith("/"):
            target = text.split(maxsplit=1)[0].partition("@")[2].lower()
            return not target or target == name
        reply = message.get("reply_to_message") or {}
        if (reply.get("from") or {}).get("id") == bot.id:
            return True
        return bool(name) and f"@{name}" in text.lower()

    def message_in(self, chat: Chat, message_id: int) -> tuple[Conversation, StoredMessage]:
        conv = self.state.chat_conversation(chat)
        stored = conv.messages.get(int(message_id))
        if stored is None:
            raise ChatError("message not found")
        return conv, stored

    # ------------------------------------------------------------------------------------------ links

    def open_link(self, user_id: int, url: str, *, language_code: str | None = None) -> Json:
        """The user opens a t.me link: ``t.me/<bot>?start=<payload>`` starts the bot's chat with
        ``/start <payload>`` (a payload Telegram would not accept is dropped, as the apps do);
        ``t.me/<chat username>`` opens that group or channel (no update)."""
        name, start = parse_link(url)
        lowered = name.lower()
        bot = next((b for b in self.state.bots.values() if (b.user.username or "").lower() == lowered), None)
        if bot is not None:
            text = "/start" if not start or not _START_RE.match(start) else f"/start {start}"
            sent: Sent = self.users.send(int(user_id), text, bot_id=bot.id, language_code=language_code)
            return {
                "type": "bot",
                "bot_id": bot.id,
                "update_id": sent.update_id,
                "message": self.state.display(sent.message, None),
            }
        chat = next((c for c in self.state.chats.values() if (c.username or "").lower() == lowered), None)
        if chat is not None:
            return {"type": "chat", "chat": chat.to_api()}
        raise ChatError(f"no bot or public chat is called @{name}")


def parse_link(url: str) -> tuple[str, str | None]:
    """(username, start parameter) of ``https://t.me/<name>?start=..`` or ``tg://resolve?domain=..``."""
    parts = urlsplit(str(url).strip())
    query = parse_qs(parts.query)
    if parts.scheme == "tg":
        if parts.netloc != "resolve" or not query.get("domain"):
            raise ChatError("a tg:// link must be tg://resolve?domain=<name>")
        name = query["domain"][0]
    elif parts.scheme in ("http", "https", "") and (parts.netloc or "").lower() in _LINK_HOSTS:
        name = parts.path.strip("/").split("/")[0]
    else:
        raise ChatError("not a t.me link")
    name = name.removeprefix("@")
    if not name:
        raise ChatError("the link names no bot or chat")
    start = query.get("start", [None])[0]
    return name, start
