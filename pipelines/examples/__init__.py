"""Training examples: labelled impressions joined with point-in-time features."""
