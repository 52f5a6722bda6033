"""Run by spark-submit from tests/test_spark_submit.py: prints what the session factory kept."""

import json

from pipelines.config import load_settings
from pipelines.lakehouse.session import launched_by_spark_submit, spark_session

spark = spark_session(load_settings(env="local"), "probe")
conf = spark.sparkContext.getConf()
print(json.dumps({
    "launched_by_spark_submit": launched_by_spark_submit(),
    "master": spark.sparkContext.master,
    "shuffle_partitions": spark.conf.get("spark.sql.shuffle.partitions"),
    "time_zone": spark.conf.get("spark.sql.session.timeZone"),
    "delta_extension": conf.get("spark.sql.extensions"),
}))
spark.stop()
