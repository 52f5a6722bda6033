"""Resolve Delta's Spark jars into the configured Ivy cache, once, with the network.

delta-spark's own mechanism (spark.jars.packages through Ivy) fetches them from
Maven Central; later sessions resolve from the cache and start offline. A
small Delta write and read proves the jars load. With --object-store, the
hadoop-aws of pyspark's Hadoop (and its AWS SDK) as well, for s3a:// data
(make test-cluster; about 560 MB, so plain setup leaves it out).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pipelines.config import load_settings  # noqa: E402
from pipelines.lakehouse.session import record_resolved_jars, spark_session  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--object-store", action="store_true", help="also hadoop-aws, for s3a:// data")
    object_store = parser.parse_args().object_store
    # Only where the data lives decides the packages: the probe itself writes locally.
    settings = load_settings(overrides=["spark.master=local[1]", *(["lakehouse=s3a://resolve/lakehouse"] if object_store else [])])
    spark = spark_session(settings, "seqlake-resolve-jars")
    with tempfile.TemporaryDirectory() as folder:
        spark.range(3).write.format("delta").save(f"{folder}/probe")
        rows = spark.read.format("delta").load(f"{folder}/probe").count()
    jars = record_resolved_jars(spark, settings)
    if object_store:
        spark._jvm.org.apache.hadoop.fs.FileSystem.getFileSystemClass("s3a", spark._jsc.hadoopConfiguration())
    spark.stop()
    if rows != 3:
        sys.exit("Delta probe table did not read back 3 rows")
    marker = Path(settings.spark.jars_cache) / (".resolved-object-store" if object_store else ".resolved")
    marker.write_text("\n".join(jars) + "\n")
    print(f"Delta jars resolved into {settings.spark.jars_cache}: {', '.join(jars)}")


if __name__ == "__main__":
    main()
