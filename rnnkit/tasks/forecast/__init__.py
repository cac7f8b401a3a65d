"""Forecasting: config, series data (:mod:`.data`), the network (:mod:`.model`, :mod:`.highway`), the
rolling-origin backtest (:mod:`.backtest`), training (:mod:`.pipeline`) and the registry entry (:mod:`.task`)."""
