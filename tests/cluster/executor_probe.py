"""Submitted by test_spark_cluster: where the executors' Python tasks ran, as one JSON line."""

import json
import os
import sys

import pandas as pd

from pipelines.config import load_settings
from pipelines.lakehouse.session import spark_session


def where_it_ran(batches):
    import pipelines

    for _ in batches:
        yield pd.DataFrame({"executable": [sys.executable], "pipelines": [pipelines.__file__], "folder": [os.getcwd()]})


spark = spark_session(load_settings(), "seqlake-executor-probe")
rows = spark.range(0, 16, numPartitions=16).mapInPandas(where_it_ran, "executable string, pipelines string, folder string")
print(json.dumps({"driver": sys.executable, "executors": [r.asDict() for r in rows.distinct().collect()]}))
spark.stop()
