"""Data-quality gates: a suite per published table (Great Expectations 1.x) and write-audit-publish."""
