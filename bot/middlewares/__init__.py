from bot.middlewares.database import DbSessionMiddleware, InboxTicket
from bot.middlewares.i18n import I18nMiddleware
from bot.middlewares.throttling import ThrottlingMiddleware
from bot.middlewares.user import UserMiddleware

__all__ = ["DbSessionMiddleware", "I18nMiddleware", "InboxTicket", "ThrottlingMiddleware", "UserMiddleware"]
