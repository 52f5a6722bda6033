"""Engagement statistics of users and items as of a date (gold/user_stats, gold/item_stats)."""
