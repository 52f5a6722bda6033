"""Behavior Sequence Encoding (SDIM): SimHash signatures of items and per-user bucket sums."""
