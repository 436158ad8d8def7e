"""Groups and channels in the Telegram emulator, through the control API (as users) and the real aiogram Bot
(the bot's side): updates arrive in Telegram's shapes and parse as aiogram's types."""

from __future__ import annotations

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.types import (
    ChatMemberAdministrator,
    ChatMemberLeft,
    ChatMemberMember,
    ChatMemberOwner,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)

from sandbox.telegram import TelegramEmulator
from sandbox.telegram.client import ControlError, EmulatorClient

OWNER, READER, STRANGER = 5001, 5002, 5003


async def updates(bot: Bot) -> list[Update]:
    """Every pending update (confirmed, so the next call returns only newer ones)."""
    found = await bot.get_updates(timeout=0)
    if found:
        await bot.get_updates(offset=found[-1].update_id + 1, timeout=0)
    return found


async def test_a_channel_the_bot_administers_posts_reads_and_edits(
    emu: TelegramEmulator, bot: Bot, client: EmulatorClient
) -> None:
    await client.post("users", {"user_id": OWNER, "first_name": "Olga", "last_name": "Owner"})
    created = await client.create_chat(
        "channel", "Alpha Signals", OWNER, username="alpha_signals", signatures=True
    )
    channel = int(created["chat"]["id"])
    assert str(channel).startswith("-100") and created["status"] == "creator" and created["can_post"]
    assert created["chat"] == {
        "id": channel,
        "type": "channel",
        "title": "Alpha Signals",
        "username": "alpha_signals",
    }

    # the bot is not in the channel yet: Telegram knows no such chat for it
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.get_chat(channel)

    # promoted without the right to post: my_chat_member left -> administrator
    answer = await client.set_bot_member(channel, rights={"can_post_messages": False})
    assert answer["member"]["status"] == "administrator" and answer["member"]["can_post_messages"] is False
    [update] = await updates(bot)
    event = update.my_chat_member
    assert event is not None and event.chat.id == channel and event.chat.type == "channel"
    assert event.from_user.id == OWNER
    assert isinstance(event.old_chat_member, ChatMemberLeft)
    assert isinstance(event.new_chat_member, ChatMemberAdministrator)
    assert event.new_chat_member.can_post_messages is False and event.new_chat_member.can_edit_messages
    with pytest.raises(TelegramBadRequest, match="need administrator rights in the channel chat"):
        await bot.send_message(channel, "hello")

    # the right granted later: another my_chat_member, administrator -> administrator
    await client.set_bot_member(channel, rights={"can_post_messages": True})
    [update] = await updates(bot)
    assert update.my_chat_member is not None
    assert isinstance(update.my_chat_member.old_chat_member, ChatMemberAdministrator)
    new = update.my_chat_member.new_chat_member
    assert isinstance(new, ChatMemberAdministrator) and new.can_post_messages
    member = await bot.get_chat_member(channel, OWNER)
    assert isinstance(member, ChatMemberOwner)
    me = await bot.get_chat_member(channel, bot.id)
    assert isinstance(me, ChatMemberAdministrator) and me.can_post_messages
    assert (await bot.get_chat("@alpha_signals")).id == channel

    # the bot posts a card: it is the channel's post, signed with the bot's name
    link = "https://t.me/cryptouniverse_bot?start=copy_1_2"
    markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="Copy", url=link)]])
    card = await bot.send_message(channel, "<b>BTC/USDT LONG</b>", reply_markup=markup)
    assert card.from_user is None and card.sender_chat is not None and card.sender_chat.id == channel
    assert card.author_signature == "CryptoUniverse"

    # the owner posts as the channel: channel_post to the bot, with sender_chat and the signature
    posted = await client.post_in(channel, OWNER, "ETH/USDT LONG Entry 3000 TP 3300 SL 2800")
    assert "from" not in posted and posted["sender_chat"]["id"] == channel
    assert posted["posted_by"]["id"] == OWNER  # emulator-only: who really posted it
    [update] = await updates(bot)
    post = update.channel_post
    assert post is not None and post.text == posted["text"] and post.chat.id == channel
    assert post.from_user is None and post.sender_chat is not None and post.sender_chat.id == channel
    assert post.author_signature == "Olga Owner"
    assert post.entities is None  # plain text: no automatic entities in this one

    # the owner edits it: edited_channel_post
    await client.edit_post(channel, OWNER, post.message_id, "ETH/USDT LONG Entry 3000 TP 3400 SL 2800")
    [update] = await updates(bot)
    edited = update.edited_channel_post
    assert edited is not None and edited.message_id == post.message_id and edited.edit_date
    assert edited.text is not None and "3400" in edited.text

    # the history, as a reader sees it: the bot's card with its button, then the owner's post
    history = await client.chat_messages(channel)
    assert [m.message_id for m in history] == [card.message_id, post.message_id]
    assert history[0].buttons == [[("Copy", link)]] and history[0].html == "<b>BTC/USDT LONG</b>"
    assert history[0]["posted_by"]["is_bot"] is True
    assert [m.message_id for m in await client.chat_messages(channel, by_bot=True)] == [card.message_id]
    found = await client.wait_chat_messages(channel, 1, timeout=1)
    assert found[0].text == "BTC/USDT LONG"
    assert emu.messages(channel, by_bot=True)[0]["message_id"] == card.message_id

    # a subscriber reads but may not post; a stranger may not post either
    await client.set_member(channel, READER)
    assert [c["chat"]["id"] for c in await client.chats(READER)] == [channel]
    assert (await client.chats(READER))[0]["can_post"] is False
    with pytest.raises(ControlError, match="can_post_messages"):
        await client.post_in(channel, READER, "let me in")
    with pytest.raises(ControlError):
        await client.post_in(channel, STRANGER, "spam")
    assert await updates(bot) == []  # no chat_member: the bot did not ask for them


async def test_the_bot_removed_or_banned_and_chat_member_updates(
    emu: TelegramEmulator, bot: Bot, client: EmulatorClient
) -> None:
    channel = await client.create_channel("Beta Calls", OWNER)
    with pytest.raises(ControlError, match="only be added to channels as administrators"):
        await client.set_bot_member(channel, "member")
    await client.set_bot_member(channel)
    await bot.get_updates(allowed_updates=["my_chat_member", "chat_member", "channel_post"], timeout=0)
    await updates(bot)

    # with chat_member allowed, an administrator bot hears of other members
    await client.set_member(channel, READER)
    [update] = await updates(bot)
    assert update.chat_member is not None and update.chat_member.new_chat_member.user.id == READER
    assert isinstance(update.chat_member.new_chat_member, ChatMemberMember)
    assert update.chat_member.from_user.id == READER  # joined on his own

    # rights taken away: the bot is out of the channel
    await client.set_bot_member(channel, "left")
    [update] = await updates(bot)
    assert update.my_chat_member is not None
    assert isinstance(update.my_chat_member.new_chat_member, ChatMemberLeft)
    with pytest.raises(TelegramForbiddenError, match="bot is not a member of the channel chat"):
        await bot.send_message(channel, "still here?")
    await client.post_in(channel, OWNER, "nobody reads this")
    assert await updates(bot) == []
    await client.set_bot_member(channel, "kicked")
    with pytest.raises(TelegramForbiddenError, match="bot was kicked from the channel chat"):
        await bot.send_message(channel, "still here?")
    with pytest.raises(ControlError, match="owner cannot be demoted"):
        await client.set_member(channel, OWNER, "left")


async def test_a_group_in_privacy_mode(emu: TelegramEmulator, bot: Bot, client: EmulatorClient) -> None:
    group = await client.create_group("Traders", OWNER)
    await client.set_bot_member(group, "member")
    [joined, service] = await updates(bot)
    assert joined.my_chat_member is not None
    assert isinstance(joined.my_chat_member.new_chat_member, ChatMemberMember)
    assert service.message is not None and service.message.new_chat_members is not None
    assert service.message.new_chat_members[0].id == bot.id and service.message.chat.type == "supergroup"

    answer = await client.set_member(group, READER)
    assert answer["message"]["new_chat_members"][0]["id"] == READER
    [update] = await updates(bot)
    assert update.message is not None and update.message.from_user is not None
    assert update.message.from_user.id == READER

    # privacy mode: plain messages are not seen, commands and mentions are
    await client.post_in(group, READER, "hello all")
    command = await client.post_in(group, READER, "/link")
    await client.post_in(group, READER, "/link@other_bot")
    mention = await client.post_in(group, READER, "ping @cryptouniverse_bot")
    seen = [u.message.message_id for u in await updates(bot) if u.message is not None]
    assert seen == [command["message_id"], mention["message_id"]]
    with pytest.raises(ControlError):
        await client.post_in(group, STRANGER, "not a member")

    # the bot answers in the group; an administrator bot sees every message
    sent = await bot.send_message(group, "hi")
    assert sent.from_user is not None and sent.from_user.id == bot.id and sent.sender_chat is None
    reply = await client.post_in(group, READER, "thanks", reply_to_message_id=sent.message_id)
    await client.set_bot_member(group, "administrator", rights={"can_pin_messages": False})
    plain = await client.post_in(group, OWNER, "plain")
    got = await updates(bot)
    assert [u.message.message_id for u in got if u.message is not None] == [
        reply["message_id"],
        plain["message_id"],
    ]
    [promoted] = [u.my_chat_member for u in got if u.my_chat_member is not None]
    assert isinstance(promoted.new_chat_member, ChatMemberAdministrator)
    assert (
        promoted.new_chat_member.can_pin_messages is False
        and promoted.new_chat_member.can_post_messages is None
    )

    # removed from the group: a left_chat_member message for the bots still there (none) and 403 after
    await client.set_member(group, READER, "left")
    left = await updates(bot)
    assert left[0].message is not None and left[0].message.left_chat_member is not None
    await client.set_bot_member(group, "left")
    with pytest.raises(TelegramForbiddenError, match="bot is not a member of the supergroup chat"):
        await bot.send_message(group, "bye")


async def test_deep_links_open_the_bot_with_start(
    emu: TelegramEmulator, bot: Bot, client: EmulatorClient
) -> None:
    opened = await client.open_link(READER, "https://t.me/cryptouniverse_bot?start=copy_7_12")
    assert opened["type"] == "bot" and opened["message"]["text"] == "/start copy_7_12"
    assert opened["message"]["chat"]["id"] == READER
    [update] = await updates(bot)
    assert update.message is not None and update.message.text == "/start copy_7_12"
    assert update.message.entities is not None and update.message.entities[0].type == "bot_command"
    assert update.message.entities[0].length == len("/start")

    await client.open_link(READER, "tg://resolve?domain=CryptoUniverse_bot&start=abc")
    await client.open_link(READER, "https://t.me/cryptouniverse_bot?start=not%20valid!")
    texts = [u.message.text for u in await updates(bot) if u.message is not None]
    assert texts == ["/start abc", "/start"]  # an invalid payload is dropped, as the apps do

    channel = await client.create_channel("Public", OWNER, username="public_calls")
    assert (await client.open_link(READER, "https://t.me/public_calls"))["type"] == "chat"
    with pytest.raises(ControlError, match="no bot or public chat"):
        await client.open_link(READER, "https://t.me/nobody_here")
    with pytest.raises(ControlError, match=r"not a t\.me link"):
        await client.open_link(READER, "https://example.com/cryptouniverse_bot")

    # a callback button on a channel post: the query carries the channel's message
    await client.set_bot_member(channel)
    await updates(bot)
    markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="Vote", callback_data="vote")]])
    card = await bot.send_message(channel, "Poll", reply_markup=markup)
    reader = client.user(READER)
    [message] = await client.chat_messages(channel, by_bot=True)
    await reader.press(message, text="Vote")
    [update] = await updates(bot)
    query = update.callback_query
    assert query is not None and query.from_user.id == READER and query.data == "vote"
    assert query.message is not None and query.message.chat.id == channel
    assert query.message.message_id == card.message_id
