"""Risk controls: position sizing, exposure, daily loss, kill switch."""
