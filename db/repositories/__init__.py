"""Repositories: queries only. They flush when they must but never commit."""

from db.repositories.audit import AuditRepository
from db.repositories.inbox import InboxClaim, InboxRepository
from db.repositories.tenants import TenantRepository
from db.repositories.users import UserRepository

__all__ = ["AuditRepository", "InboxClaim", "InboxRepository", "TenantRepository", "UserRepository"]
