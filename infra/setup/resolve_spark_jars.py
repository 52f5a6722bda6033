"""Resolve Delta's Spark jars into the configured Ivy cache, once, with the network.

delta-spark's own mechanism (spark.jars.packages through Ivy) fetches them from
Maven Central; later sessions resolve from the cache and start offline. A
small Delta write and read proves the jars load.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pipelines.config import load_settings  # noqa: E402
from pipelines.lakehouse.session import spark_session  # noqa: E402


def main() -> None:
    settings = load_settings(overrides=["spark.master=local[1]"])
    spark = spark_session(settings.spark, "seqlake-resolve-jars")
    with tempfile.TemporaryDirectory() as folder:
        spark.range(3).write.format("delta").save(f"{folder}/probe")
        rows = spark.read.format("delta").load(f"{folder}/probe").count()
    spark.stop()
    if rows != 3:
        sys.exit("Delta probe table did not read back 3 rows")
    jars = sorted(p.name for p in (Path(settings.spark.jars_cache) / "jars").glob("*.jar"))
    marker = Path(settings.spark.jars_cache) / ".resolved"
    marker.write_text("\n".join(jars) + "\n")
    print(f"Delta jars resolved into {settings.spark.jars_cache}: {', '.join(jars)}")


if __name__ == "__main__":
    main()
