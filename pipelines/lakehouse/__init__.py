"""Spark session, table registry and idempotent Delta writes."""
