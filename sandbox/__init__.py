"""Local peers that speak the real protocols (Telegram Bot API, exchanges). Imports nothing of the product."""
