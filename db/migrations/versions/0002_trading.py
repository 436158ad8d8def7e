"""trading: accounts, paper balances, profiles, orders, positions, pending actions

Revision ID: 0002_trading
Revises: 0001_foundation
Create Date: 2026-11-23
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.types import Money, UTCDateTime


revision: str = '0002_trading'
down_revision: str | None = '0001_foundation'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table('exchange_accounts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('exchange', sa.String(length=32), nullable=False),
    sa.Column('is_paper', sa.Boolean(), nullable=False),
    sa.Column('api_key_enc', sa.Text(), nullable=True),
    sa.Column('secret_enc', sa.Text(), nullable=True),
    sa.Column('passphrase_enc', sa.Text(), nullable=True),
    sa.Column('key_hint', sa.String(length=16), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('removed_at', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_exchange_accounts_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exchange_accounts'))
    )
    op.create_index('ix_exchange_accounts_user_id', 'exchange_accounts', ['user_id'], unique=False)
    op.create_table('pending_actions',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('expires_at', UTCDateTime(), nullable=False),
    sa.Column('used_at', UTCDateTime(), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_pending_actions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pending_actions'))
    )
    op.create_index(op.f('ix_pending_actions_user_id'), 'pending_actions', ['user_id'], unique=False)
    op.create_table('paper_balances',
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('asset', sa.String(length=16), nullable=False),
    sa.Column('free', Money(), nullable=False),
    sa.Column('locked', Money(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['exchange_accounts.id'], name=op.f('fk_paper_balances_account_id_exchange_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('account_id', 'asset', name=op.f('pk_paper_balances'))
    )
    op.create_table('positions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('exchange', sa.String(length=32), nullable=False),
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('amount', Money(), nullable=False),
    sa.Column('average_entry', Money(), nullable=False),
    sa.Column('cost_basis', Money(), nullable=False),
    sa.Column('fees', Money(), nullable=False),
    sa.Column('realized_pnl', Money(), nullable=False),
    sa.Column('stop_loss', Money(), nullable=True),
    sa.Column('take_profit', Money(), nullable=True),
    sa.Column('opened_at', UTCDateTime(), nullable=False),
    sa.Column('closed_at', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['exchange_accounts.id'], name=op.f('fk_positions_account_id_exchange_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_positions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_positions'))
    )
    op.create_index('ix_positions_account_status', 'positions', ['account_id', 'status'], unique=False)
    op.create_index(op.f('ix_positions_user_id'), 'positions', ['user_id'], unique=False)
    op.create_table('trading_profiles',
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('active_account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('max_position_pct', Money(), nullable=False),
    sa.Column('max_open_positions', sa.Integer(), nullable=False),
    sa.Column('max_daily_loss_pct', Money(), nullable=False),
    sa.Column('paused_until', UTCDateTime(), nullable=True),
    sa.Column('pause_reason', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['active_account_id'], ['exchange_accounts.id'], name=op.f('fk_trading_profiles_active_account_id_exchange_accounts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_trading_profiles_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_trading_profiles'))
    )
    op.create_table('orders',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('position_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('exchange', sa.String(length=32), nullable=False),
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('side', sa.String(length=4), nullable=False),
    sa.Column('order_type', sa.String(length=8), nullable=False),
    sa.Column('amount', Money(), nullable=False),
    sa.Column('limit_price', Money(), nullable=True),
    sa.Column('client_order_id', sa.String(length=40), nullable=False),
    sa.Column('exchange_order_id', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('filled', Money(), nullable=False),
    sa.Column('average_price', Money(), nullable=True),
    sa.Column('cost', Money(), nullable=False),
    sa.Column('fee', Money(), nullable=False),
    sa.Column('fee_asset', sa.String(length=16), nullable=True),
    sa.Column('realized_pnl', Money(), nullable=False),
    sa.Column('reserved', Money(), nullable=False),
    sa.Column('stop_loss', Money(), nullable=True),
    sa.Column('take_profit', Money(), nullable=True),
    sa.Column('reason', sa.String(length=16), nullable=False),
    sa.Column('error', sa.String(length=255), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['exchange_accounts.id'], name=op.f('fk_orders_account_id_exchange_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['position_id'], ['positions.id'], name=op.f('fk_orders_position_id_positions'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_orders_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orders')),
    sa.UniqueConstraint('client_order_id', name=op.f('uq_orders_client_order_id'))
    )
    op.create_index('ix_orders_account_status', 'orders', ['account_id', 'status'], unique=False)
    op.create_index('ix_orders_account_updated', 'orders', ['account_id', 'updated_at'], unique=False)
    op.create_index(op.f('ix_orders_user_id'), 'orders', ['user_id'], unique=False)



def downgrade() -> None:

    op.drop_index(op.f('ix_orders_user_id'), table_name='orders')
    op.drop_index('ix_orders_account_updated', table_name='orders')
    op.drop_index('ix_orders_account_status', table_name='orders')
    op.drop_table('orders')
    op.drop_table('trading_profiles')
    op.drop_index(op.f('ix_positions_user_id'), table_name='positions')
    op.drop_index('ix_positions_account_status', table_name='positions')
    op.drop_table('positions')
    op.drop_table('paper_balances')
    op.drop_index(op.f('ix_pending_actions_user_id'), table_name='pending_actions')
    op.drop_table('pending_actions')
    op.drop_index('ix_exchange_accounts_user_id', table_name='exchange_accounts')
    op.drop_table('exchange_accounts')

