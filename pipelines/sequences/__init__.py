"""Long per-user behavior sequences (gold/user_sequences)."""
