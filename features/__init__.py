"""The feature store: declarative views over the gold tables (definitions.py),
point-in-time and latest reads of what the nights published (store.py, behind
`seqlake features get`), and the same views for Feast (feast_repo/)."""
