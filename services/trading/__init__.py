"""Trading: order parsing, paper and live execution, positions and PnL."""
