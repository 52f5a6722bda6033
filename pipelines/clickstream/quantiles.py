"""Quantiles of large groups that do not depend on the order rows arrive in.

`percentile_approx` merges its summaries in whatever order a shuffle delivers
them, so on a group larger than its accuracy (the population of a whole day)
two runs over the same rows can disagree. A histogram of fixed-width bins
counts the same in every order: the quantile is read off the cumulative
counts, exact to half a bin.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F


def binned_quantiles(
    rows: DataFrame, group: str, columns: Sequence[str], probabilities: Sequence[float], resolution: float = 0.01
) -> DataFrame:
    """Per `group`: for each of `columns` and each probability p, the column
    `quantile_column(column, p)` (`x_p25` for the 0.25-quantile of x) holding the p-quantile of its non-null
    values, the middle of the first `resolution`-wide bin whose cumulative
    count reaches p of the group's count."""
    values = rows.select(
        group,
        F.explode(F.array(*[F.struct(F.lit(c).alias("_column"), F.col(c).cast("double").alias("_value")) for c in columns])).alias("_v"),
    ).select(group, "_v._column", "_v._value").where(F.col("_value").isNotNull())
    counts = values.groupBy(group, "_column", F.floor(F.col("_value") / resolution).alias("_bin")).agg(
        F.count("*").alias("_n")
    )
    per_column = Window.partitionBy(group, "_column")
    cumulative = counts.select(
        "*",
        F.sum("_n").over(per_column.orderBy("_bin").rowsBetween(Window.unboundedPreceding, 0)).alias("_cum"),
        F.sum("_n").over(per_column).alias("_total"),
    )
    quantiles = cumulative.groupBy(group, "_column").agg(
        *[F.min(F.when(F.col("_cum") >= p * F.col("_total"), F.col("_bin"))).alias(quantile_column("", p)) for p in probabilities]
    )
    return quantiles.groupBy(group).agg(
        *[
            ((F.max(F.when(F.col("_column") == c, F.col(quantile_column("", p)))) + 0.5) * resolution).alias(quantile_column(c, p))
            for c in columns
            for p in probabilities
        ]
    )


def quantile_column(column: str, probability: float) -> str:
    """The name binned_quantiles gives the `probability`-quantile of `column`."""
    return f"{column}_p{probability * 100:g}"
