"""The master controller: components the bot depends on, their health, transitions and recovery."""

from services.controller.alerts import AdminAlerts, format_duration, user_locales
from services.controller.base import Component, Health, Status
from services.controller.components import (
    DatabaseComponent,
    ExchangeComponent,
    ProbeComponent,
    RedisComponent,
    SchedulerComponent,
    llm_component,
    telegram_component,
)
from services.controller.controller import ComponentView, Controller, Snapshot, Transition
from services.controller.jobs import JobSchedule, JobStats, JobTracker

__all__ = [
    "AdminAlerts",
    "Component",
    "ComponentView",
    "Controller",
    "DatabaseComponent",
    "ExchangeComponent",
    "Health",
    "JobSchedule",
    "JobStats",
    "JobTracker",
    "ProbeComponent",
    "RedisComponent",
    "SchedulerComponent",
    "Snapshot",
    "Status",
    "Transition",
    "format_duration",
    "llm_component",
    "telegram_component",
    "user_locales",
]
