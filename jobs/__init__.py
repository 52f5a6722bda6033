"""Thin entry points: parse arguments and configuration, open sessions, call pipelines/, write, report."""
