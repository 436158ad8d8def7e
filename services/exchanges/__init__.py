"""Exchange layer: one adapter over ccxt for Binance, Kraken and KuCoin spot,
typed errors, retries and circuit breakers."""
