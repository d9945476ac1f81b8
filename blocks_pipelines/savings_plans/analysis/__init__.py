"""Savings Plans analysis: the analyzer (a commitment ladder sized on a low quantile of demand), its forecast, its
inputs and the rates it prices with."""
