"""The nightly report: what it reads, its sections and plots, and the HTML page."""
