"""The `seqlake` command: one subcommand per job, each also runnable as `python -m jobs.X`."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

# Subcommand -> job module; imported only when called, so `seqlake generate`
# does not start the JVM-backed imports of the Spark jobs.
COMMANDS = {
    "generate": ("jobs.generate_clickstream", "write synthetic landing files and their truth"),
    "ingest": ("jobs.ingest_events", "landing files of a date -> bronze/events + bronze/events_rejected"),
    "import": ("jobs.import_source", "a public dataset (ebnerd, taobao, kuairand, mind) -> bronze"),
    "clean": ("jobs.clean_events", "bronze/events -> silver/events: dedup, sessions, dwell, noise flags"),
    "sequences": ("jobs.build_sequences", "silver/events -> gold/user_sequences as of a date"),
    "signatures": ("jobs.build_signatures", "BSE: item signatures and user bucket sums as of a date"),
    "examples": ("jobs.build_examples", "gold/training_examples: a date's impressions with features as of the day before"),
    "evaluate": ("jobs.evaluate", "measure a stage against the generator's truth (evaluate denoise --date D)"),
    "demo": ("jobs.demo", "generate a few days and run the night's stages on them"),
}


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help") or args[0] not in COMMANDS:
        print("usage: seqlake COMMAND [--help] ...\n\ncommands:")
        for name, (_, about) in COMMANDS.items():
            print(f"  {name:<10} {about}")
        if args and args[0] not in ("-h", "--help"):
            sys.exit(f"seqlake: unknown command {args[0]!r}")
        return
    module, _ = COMMANDS[args[0]]
    importlib.import_module(module).main(args[1:])


if __name__ == "__main__":
    main()
