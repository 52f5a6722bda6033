"""CTR models over long behavior sequences (one model a file, a shared base), their
batches, training and evaluation, tracking and registry."""
