"""Market analysis: indicators, derived events, support/resistance levels, opportunity scores and charts.

Pure computations on candles already in memory: no network, no Telegram. `chart` imports matplotlib, so it is
not imported here; everything else is cheap to import.
"""
