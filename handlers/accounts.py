"""/connect: a wizard that takes an exchange's API key (each message holding a secret is deleted at once).
/accounts: the paper and live accounts; switching (live only after a confirmation that expires), removal."""

from __future__ import annotations

from typing import Any

import structlog
from aiogram import Bot, F, Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.enums import ChatAction
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, Filter, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, Update

from handlers import format as fmt
from handlers.commands import COMMANDS
from handlers.errors import describe, remedy
from handlers.filters import PRIVATE
from handlers.render import plain, show
from keyboards.accounts import (
    CANCEL,
    AccountCB,
    ConnectCB,
    SwitchCB,
    account_label,
    accounts_keyboard,
    after_connect_keyboard,
    exchange_name,
    exchanges_keyboard,
    list_keyboard,
    remove_keyboard,
    switch_keyboard,
    wizard_cancel_keyboard,
)
from keyboards.menu import MenuCB
from services.errors import AppError
from services.exchanges.types import EXCHANGES
from services.i18n import Html, Translator
from services.trading.accounts import (
    NEEDS_PASSPHRASE,
    AccountService,
    AccountView,
    Connected,
    CredentialFormatError,
    check_field,
)
from services.users import UserProfile

log = structlog.get_logger(__name__)

SHOWN_BALANCES = 8
_MIN_SCRUB = 6


class ConnectWizard(StatesGroup):
    exchange = State()
    api_key = State()
    secret = State()
    passphrase = State()


class KnownCommand(Filter):
    """One of the bot's commands (or /cancel). A secret may start with a slash (base64), but it is never
    exactly a command name."""

    async def __call__(self, message: Message) -> bool:
        text = message.text or ""
        if not text.startswith("/"):
            return False
        name = text.split(maxsplit=1)[0][1:].partition("@")[0].lower()
        return name in COMMANDS or name == "cancel"


KNOWN_COMMAND = KnownCommand()
NOT_A_COMMAND = ~KNOWN_COMMAND


def build_router() -> Router:
    router = Router(name="accounts")
    router.message.filter(PRIVATE)
    # In the wizard: /cancel leaves it; any other command leaves it too and is handled as usual.
    router.message.register(cmd_cancel, Command("cancel"), StateFilter(ConnectWizard))
    router.message.register(leave_wizard, StateFilter(ConnectWizard), KNOWN_COMMAND)
    router.message.register(cmd_connect, Command("connect"))
    router.message.register(cmd_accounts, Command("accounts"))
    router.message.register(on_early_message, StateFilter(ConnectWizard.exchange), NOT_A_COMMAND)
    router.message.register(on_api_key, StateFilter(ConnectWizard.api_key), NOT_A_COMMAND)
    router.message.register(on_secret, StateFilter(ConnectWizard.secret), NOT_A_COMMAND)
    router.message.register(on_passphrase, StateFilter(ConnectWizard.passphrase), NOT_A_COMMAND)
    router.callback_query.register(on_wizard_cancel, ConnectCB.filter(F.exchange == CANCEL))
    router.callback_query.register(on_exchange_chosen, ConnectCB.filter())
    router.callback_query.register(on_list, AccountCB.filter(F.action == "list"))
    router.callback_query.register(on_connect_button, AccountCB.filter(F.action == "connect"))
    router.callback_query.register(on_use, AccountCB.filter(F.action == "use"))
    router.callback_query.register(on_remove, AccountCB.filter(F.action == "remove"))
    router.callback_query.register(on_remove_confirmed, AccountCB.filter(F.action == "remove_yes"))
    router.callback_query.register(on_switch_confirm, SwitchCB.filter(F.action == "confirm"))
    router.callback_query.register(on_switch_cancel, SwitchCB.filter(F.action == "cancel"))
    router.callback_query.register(on_list, MenuCB.filter(F.section == "accounts"))
    return router


# ------------------------------------------------------------------------------------------- rendering


def error_text(t: Translator, exc: AppError) -> str:
    params: dict[str, Any] = dict(exc.params)
    if isinstance(params.get("exchange"), str) and params["exchange"] in EXCHANGES:
        params["exchange"] = exchange_name(t, params["exchange"])
    if isinstance(exc, CredentialFormatError):
        params["field"] = t(f"accounts.fields.{params.get('field', 'api_key')}")
    return t(exc.message_key, **params)


def scrub(text: str, *secrets: str | None) -> str:
    """Defence in depth: no reply ever carries a secret the user sent, even inside an exchange's message."""
    for secret in secrets:
        if secret and len(secret) >= _MIN_SCRUB:
            text = text.replace(secret, "***")
    return text


def render_accounts(t: Translator, accounts: list[AccountView], note: str = "") -> str:
    lines = []
    for account in accounts:
        key = "accounts.list.line_active" if account.active else "accounts.list.line"
        lines.append(
            t(
                key,
                account=account_label(t, account),
                mode=t(f"accounts.mode.{account.mode}"),
                since=account.created_at.strftime("%Y-%m-%d"),
            )
        )
    text = t("accounts.list.text", lines=Html("\n".join(lines)))
    return f"{note}\n\n{text}" if note else text


def render_connected(t: Translator, done: Connected) -> str:
    lines = [
        t(
            "accounts.connected.line",
            asset=b.asset,
            amount=fmt.amount(b.total),
            value=fmt.money(b.value) if b.value is not None else "?",
            quote=done.quote,
        )
        for b in done.balances[:SHOWN_BALANCES]
    ]
    hidden = len(done.balances) - SHOWN_BALANCES
    if hidden > 0:
        lines.append(t("accounts.connected.more", count=hidden))
    if not lines:
        lines.append(t("accounts.connected.empty"))
    replaced = t("accounts.connected.replaced") + "\n" if done.replaced else ""
    return t(
        "accounts.connected.text",
        exchange=exchange_name(t, done.account.exchange),
        hint=done.account.key_hint,
        lines=Html("\n".join(lines)),
        total=fmt.money(done.total_value),
        quote=done.quote,
        replaced=Html(replaced),
    )


async def _list(
    event: Message | CallbackQuery,
    user: UserProfile,
    i18n: Translator,
    accounts: AccountService,
    note: str = "",
) -> None:
    views = await accounts.accounts(user)
    await show(event, render_accounts(i18n, views, note), accounts_keyboard(i18n, views))


# ------------------------------------------------------------------------------------------- the wizard


async def _start_wizard(event: Message | CallbackQuery, state: FSMContext, i18n: Translator) -> None:
    await state.clear()
    await state.set_state(ConnectWizard.exchange)
    await show(event, i18n("accounts.connect.choose"), exchanges_keyboard(i18n))


async def cmd_connect(message: Message, state: FSMContext, i18n: Translator) -> None:
    await _start_wizard(message, state, i18n)


async def on_connect_button(query: CallbackQuery, state: FSMContext, i18n: Translator) -> None:
    await _start_wizard(query, state, i18n)


async def cmd_cancel(message: Message, state: FSMContext, i18n: Translator) -> None:
    await state.clear()
    await message.answer(i18n("accounts.connect.cancelled"), reply_markup=list_keyboard(i18n))


async def on_wizard_cancel(query: CallbackQuery, state: FSMContext, i18n: Translator) -> None:
    await state.clear()
    await show(query, i18n("accounts.connect.cancelled"), list_keyboard(i18n))


async def leave_wizard(message: Message, state: FSMContext) -> None:
    await state.clear()
    raise SkipHandler()


async def on_exchange_chosen(
    query: CallbackQuery, callback_data: ConnectCB, state: FSMContext, i18n: Translator
) -> None:
    if await state.get_state() != ConnectWizard.exchange.state or callback_data.exchange not in EXCHANGES:
        await query.answer(plain(i18n("accounts.connect.stale")), show_alert=True)
        return
    exchange = callback_data.exchange
    await state.set_data({"exchange": exchange})
    await state.set_state(ConnectWizard.api_key)
    await show(
        query,
        i18n("accounts.connect.ask_key", exchange=exchange_name(i18n, exchange)),
        wizard_cancel_keyboard(i18n),
    )


async def _forget(message: Message, accounts: AccountService, event_update: Update) -> None:
    """Delete the message at once, tell the log scrubber about what it held and blank it in the stored
    update, before anything else."""
    accounts.shield(message.text, message.caption)
    try:
        await message.delete()
    except TelegramAPIError as exc:
        log.warning("accounts.delete_failed", message_id=message.message_id, error=type(exc).__name__)
    if message.bot is not None:
        await accounts.forget_update(message.bot.id, event_update.update_id)


async def on_early_message(
    message: Message, accounts: AccountService, i18n: Translator, event_update: Update
) -> None:
    """Something typed before an exchange was chosen may well be a key: it is deleted too."""
    await _forget(message, accounts, event_update)
    await message.answer(i18n("accounts.connect.choose_first"), reply_markup=exchanges_keyboard(i18n))


async def _take(
    message: Message,
    state: FSMContext,
    i18n: Translator,
    accounts: AccountService,
    field: str,
    event_update: Update,
) -> tuple[str, str] | None:
    """The wizard's exchange and the checked value of `field`, or None after telling the user what is wrong
    (the wizard then waits for the same field again)."""
    await _forget(message, accounts, event_update)
    exchange = (await state.get_data()).get("exchange")
    if exchange not in EXCHANGES:
        await state.clear()
        await message.answer(i18n("accounts.connect.stale"), reply_markup=list_keyboard(i18n))
        return None
    if message.text is None:
        await message.answer(i18n("accounts.connect.text_only"), reply_markup=wizard_cancel_keyboard(i18n))
        return None
    try:
        value = check_field(field, message.text)
    except CredentialFormatError as exc:
        ask = i18n(f"accounts.connect.ask_{field}", exchange=exchange_name(i18n, exchange))
        await message.answer(f"{error_text(i18n, exc)}\n\n{ask}", reply_markup=wizard_cancel_keyboard(i18n))
        return None
    return str(exchange), value


async def on_api_key(
    message: Message,
    state: FSMContext,
    user: UserProfile,
    i18n: Translator,
    accounts: AccountService,
    event_update: Update,
) -> None:
    taken = await _take(message, state, i18n, accounts, "api_key", event_update)
    if taken is None:
        return
    exchange, value = taken
    await state.update_data(api_key=accounts.seal_draft(user, "api_key", value))
    await state.set_state(ConnectWizard.secret)
    await message.answer(
        i18n("accounts.connect.ask_secret", exchange=exchange_name(i18n, exchange)),
        reply_markup=wizard_cancel_keyboard(i18n),
    )


async def on_secret(
    message: Message,
    state: FSMContext,
    user: UserProfile,
    i18n: Translator,
    accounts: AccountService,
    bot: Bot,
    event_update: Update,
) -> None:
    taken = await _take(message, state, i18n, accounts, "secret", event_update)
    if taken is None:
        return
    exchange, value = taken
    await state.update_data(secret=accounts.seal_draft(user, "secret", value))
    if exchange in NEEDS_PASSPHRASE:
        await state.set_state(ConnectWizard.passphrase)
        await message.answer(
            i18n("accounts.connect.ask_passphrase", exchange=exchange_name(i18n, exchange)),
            reply_markup=wizard_cancel_keyboard(i18n),
        )
        return
    await _finish(message, state, user, i18n, accounts, bot)


async def on_passphrase(
    message: Message,
    state: FSMContext,
    user: UserProfile,
    i18n: Translator,
    accounts: AccountService,
    bot: Bot,
    event_update: Update,
) -> None:
    taken = await _take(message, state, i18n, accounts, "passphrase", event_update)
    if taken is None:
        return
    await state.update_data(passphrase=accounts.seal_draft(user, "passphrase", taken[1]))
    await _finish(message, state, user, i18n, accounts, bot)


async def _finish(
    message: Message,
    state: FSMContext,
    user: UserProfile,
    i18n: Translator,
    accounts: AccountService,
    bot: Bot,
) -> None:
    """Check the key with the exchange and store it; the progress message is edited into the outcome."""
    data = await state.get_data()
    await state.clear()
    exchange = str(data["exchange"])
    drafts: dict[str, str | None] = {"api_key": None, "secret": None, "passphrase": None}
    progress = await message.answer(i18n("accounts.connect.checking", exchange=exchange_name(i18n, exchange)))
    try:
        for name in drafts:
            if data.get(name):
                drafts[name] = accounts.open_draft(user, name, str(data[name]))
        await bot.send_chat_action(message.chat.id, ChatAction.TYPING)
        done = await accounts.connect(
            user, exchange, drafts["api_key"] or "", drafts["secret"] or "", drafts["passphrase"]
        )
    except AppError as exc:
        text = f"{error_text(i18n, exc)}\n\n{i18n('accounts.connect.try_again')}"
        await progress.edit_text(scrub(text, *drafts.values()))
        return
    await progress.edit_text(
        scrub(render_connected(i18n, done), *drafts.values()),
        reply_markup=after_connect_keyboard(i18n, done.account.id),
    )


# ------------------------------------------------------------------------------------------- the list


async def cmd_accounts(
    message: Message, user: UserProfile, i18n: Translator, accounts: AccountService
) -> None:
    await _list(message, user, i18n, accounts)


async def on_list(
    query: CallbackQuery, user: UserProfile, i18n: Translator, accounts: AccountService
) -> None:
    await _list(query, user, i18n, accounts)


async def _alert(query: CallbackQuery, i18n: Translator, exc: AppError) -> None:
    await query.answer(plain(error_text(i18n, exc)), show_alert=True)


async def on_use(
    query: CallbackQuery,
    callback_data: AccountCB,
    user: UserProfile,
    i18n: Translator,
    accounts: AccountService,
) -> None:
    try:
        request = await accounts.request_switch(user, callback_data.account_id)
    except AppError as exc:
        markup = remedy(i18n, exc)
        if markup is None:
            await _alert(query, i18n, exc)
            return
        await query.answer()  # a refusal with a way out (the plans) stays in the chat
        await query.bot.send_message(query.from_user.id, describe(i18n, exc), reply_markup=markup)  # type: ignore[union-attr]
        return
    label = account_label(i18n, request.account)
    if request.token is None:
        await _list(query, user, i18n, accounts, i18n("accounts.switch.done", account=label))
        return
    text = i18n(
        "accounts.switch.card",
        account=label,
        exchange=exchange_name(i18n, request.account.exchange),
        ttl=request.ttl_seconds,
    )
    await show(query, text, switch_keyboard(i18n, request.token))


async def on_switch_confirm(
    query: CallbackQuery,
    callback_data: SwitchCB,
    user: UserProfile,
    i18n: Translator,
    accounts: AccountService,
) -> None:
    try:
        account = await accounts.confirm_switch(user, callback_data.token)
    except AppError as exc:
        await _alert(query, i18n, exc)  # stale or repeated: nothing changes
        return
    done = i18n("accounts.switch.live_done", account=account_label(i18n, account))
    await _list(query, user, i18n, accounts, done)


async def on_switch_cancel(
    query: CallbackQuery,
    callback_data: SwitchCB,
    user: UserProfile,
    i18n: Translator,
    accounts: AccountService,
) -> None:
    if not await accounts.cancel_switch(user, callback_data.token):
        await query.answer(plain(i18n("accounts.errors.switch_expired")), show_alert=True)
        return
    await _list(query, user, i18n, accounts, i18n("accounts.switch.cancelled"))


async def on_remove(
    query: CallbackQuery,
    callback_data: AccountCB,
    user: UserProfile,
    i18n: Translator,
    accounts: AccountService,
) -> None:
    try:
        account = await accounts.account(user, callback_data.account_id)
    except AppError as exc:
        await _alert(query, i18n, exc)
        return
    text = i18n("accounts.remove.card", account=account_label(i18n, account))
    markup: InlineKeyboardMarkup = remove_keyboard(i18n, account.id)
    await show(query, text, markup)


async def on_remove_confirmed(
    query: CallbackQuery,
    callback_data: AccountCB,
    user: UserProfile,
    i18n: Translator,
    accounts: AccountService,
) -> None:
    try:
        removed = await accounts.remove(user, callback_data.account_id)
    except AppError as exc:
        await _alert(query, i18n, exc)
        return
    key = "accounts.remove.done_was_active" if removed.active else "accounts.remove.done"
    await _list(query, user, i18n, accounts, i18n(key, account=account_label(i18n, removed)))
