"""Candidates for BSE scoring. (That an SDIM scored from the candidates' bucket
sums equals the full model on the raw sequences, and that rescoring a date
replaces its scores, is tested on a whole night: tests/test_night.py.)"""

from __future__ import annotations

from pipelines.config import ExampleSettings
from pipelines.scoring.candidates import with_short_side_inputs


def test_bse_candidates_carry_the_short_tail_and_the_long_sides_summaries(spark):
    rows = spark.createDataFrame(
        [(7, 3, [1, 2, 3, 4, 5], [3, 3, 9, 3, 8], [10, 20, 30, 40, 50]), (8, 4, [], [], [])],
        "user_id long, category_id int, long_item_ids array<long>, long_category_ids array<int>, long_timestamps array<long>",
    )
    got = with_short_side_inputs(rows, ExampleSettings(train_len=4, short_len=2)).orderBy("user_id").collect()
    assert [(r.short_item_ids, r.short_category_ids, r.short_timestamps, r.long_length, r.long_category_share) for r in got] == [
        # The long side is the last train_len = 4 behaviors: categories 3, 9, 3, 8, two of them the candidate's.
        ([4, 5], [3, 8], [40, 50], 4, 0.5),
        ([], [], [], 0, 0.0),
    ]
