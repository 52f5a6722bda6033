"""Synthetic clickstream with a known truth (see DESIGN.md, "Truth and data")."""
