"""The stages of the night, one module each: a stage's body as a function of
(a Spark session or nothing, the settings, its dates) that reads its inputs,
writes, audits and publishes its tables, records its run in the ledger and
returns its figures. `jobs/` parses a command's arguments and calls one of
these; tests and benchmarks call them directly."""
