"""Instrumentation: metrics sent by the logger (StatsD)."""
