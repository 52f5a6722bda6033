"""Adapters: public clickstream formats -> seqlake landing records.

Each adapter returns `raw` (one landing record as JSON, or the source's own
text where a row cannot be mapped, which ingest then rejects) and
`source_file`; ingest's rules decide what reaches bronze, so imported data is
held to exactly the same contract as landed data.
"""
