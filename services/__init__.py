"""Business logic. No aiogram here: services take their dependencies in __init__ and return plain data."""
