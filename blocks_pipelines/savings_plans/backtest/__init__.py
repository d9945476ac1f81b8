"""Backtests of the analyzer against AWS's lookback method and the hindsight optimum, over generated demand families."""
