"""Clickstream stages: landing records to bronze, bronze to silver."""
