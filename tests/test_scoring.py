"""Candidates for BSE scoring. (That an SDIM scored from the candidates' bucket
sums equals the full model on the raw sequences, and that rescoring a date
replaces its scores, is tested on a whole night: tests/test_night.py.)"""

from __future__ import annotations

import datetime as dt

from pipelines.config import ExampleSettings, ScoringSettings
from pipelines.scoring.candidates import candidate_pairs, with_short_side_inputs


def test_candidates_come_from_recent_items_co_visitation_and_popular_items_of_top_categories(spark):
    """Sequences as of the day before (oldest first). Recent: each user's two
    newest distinct items. Co-visited: items next to a recent item in some
    user's sequence, strongest first (12 and 11 are neighbours for two users).
    Category-popular: the most acted item of the user's top category (ties by
    category id). A pair found by several sources is the first one's."""
    sequences = spark.createDataFrame(
        [(1, [10, 11, 12, 13], [1, 1, 2, 2]), (2, [11, 12, 20], [1, 2, 3]), (3, [12, 30], [2, 4])],
        "user_id long, item_ids array<long>, category_ids array<int>",
    )
    item_stats = spark.createDataFrame([(30, 4, 9), (20, 3, 5), (40, 1, 7), (41, 1, 3)],
                                       "item_id long, category_id int, item_actions long")
    rules = ScoringSettings(recent_items=2, covisit_gap=1, top_categories=1, popular_per_category=1, score_time=dt.time(9, 30))
    day = dt.date(2026, 11, 5)
    got = candidate_pairs(sequences, item_stats, day, rules, long_len=32).collect()
    assert sorted((r.user_id, r.item_id, r.category_id, r.candidate_source) for r in got) == [
        (1, 11, 1, "co_visitation"), (1, 12, 2, "recent"), (1, 13, 2, "recent"), (1, 20, 3, "co_visitation"),
        (1, 30, 4, "co_visitation"), (1, 40, 1, "category_popular"),
        (2, 11, 1, "co_visitation"), (2, 12, 2, "recent"), (2, 13, 2, "co_visitation"), (2, 20, 3, "recent"),
        (2, 30, 4, "co_visitation"), (2, 40, 1, "category_popular"),
        (3, 11, 1, "co_visitation"), (3, 12, 2, "recent"), (3, 13, 2, "co_visitation"), (3, 20, 3, "co_visitation"),
        (3, 30, 4, "recent"),
    ]
    nine_thirty = int(dt.datetime(2026, 11, 5, 9, 30, tzinfo=dt.UTC).timestamp()) * 1000
    assert {(r.impression_id, r.position, r.impression_ts, r.event_date) for r in got} == {
        ("candidates-2026-11-05", None, nine_thirty, day)}


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


def _candidates_with_sums(spark, model, vocab, projection, rows: int, long_len: int, short_len: int):
    """Candidate rows as `seqlake candidates` writes them (long sequence, short
    side and summaries from Spark), with the user's bucket sums at each
    candidate's codes in every other row (bse_version "v1") and none in the rest."""
    import numpy as np
    import pyarrow as pa

    from pipelines.bse.simhash import bucket_sums, simhash_codes

    rng = np.random.default_rng(4)
    embeddings = model.item.weight.detach().numpy()
    now = 10**12
    data, hashes, dim = [], model.config.signatures, model.config.embedding_dim
    for i in range(rows):
        history = rng.integers(1, len(vocab.items) + 1, int(rng.integers(0, long_len + 30))).tolist()
        item = int(rng.integers(1, len(vocab.items) + 1))
        side = history[-long_len:]
        vectors = embeddings[side] if side else np.zeros((0, dim), np.float32)
        _, sums = bucket_sums(simhash_codes(vectors, projection), vectors, 8) if side else (None, np.zeros((hashes, 8, dim)))
        codes = simhash_codes(embeddings[item][None], projection)[0]
        with_sums = i % 2 == 0
        data.append((i + 1, item, item % 5, None, now, side, [h % 5 for h in side], [now - 1000 * (len(side) - k) for k in range(len(side))],
                     *[1.0] * 8, "recent", dt.date(2026, 11, 5),
                     sums[np.arange(hashes), codes].ravel().astype(float).tolist() if with_sums else None, "v1" if with_sums else None))
    ddl = ("user_id long, item_id long, category_id int, position int, impression_ts long, long_item_ids array<long>, "
           "long_category_ids array<int>, long_timestamps array<long>, user_impressions double, user_clicks double, user_ctr double, "
           "user_dwell_mean_ms double, item_impressions double, item_clicks double, item_ctr double, item_dwell_mean_ms double, "
           "candidate_source string, score_date date, long_bse array<float>, bse_version string")
    frame = with_short_side_inputs(spark.createDataFrame(data, ddl), ExampleSettings(train_len=long_len, short_len=short_len))
    return pa.Table.from_pandas(frame.toPandas(), preserve_index=False)


def test_candidates_with_published_sums_score_from_them_and_the_others_end_to_end(spark, tmp_path):
    """An SDIM trained end to end scores the candidates whose bucket sums were
    published under its embeddings through its BSE twin and the others from the
    raw sequence, with the same scores as end to end on all of them; a BSE-mode
    SDIM has no end-to-end twin and refuses candidates without its sums."""
    import numpy as np
    import pyarrow as pa
    import pytest
    import torch

    from pipelines.bse.simhash import random_projection
    from pipelines.ctr.artifacts import ModelFiles, save_model
    from pipelines.ctr.base import ModelConfig
    from pipelines.ctr.batches import Vocabulary, shape_for
    from pipelines.ctr.zoo import build_model
    from pipelines.errors import MissingInputError
    from pipelines.scoring.batch_scoring import ModelReplica, click_probabilities, scoring_plan

    projection = random_projection(32, 16, 3, seed=5)
    vocab = Vocabulary.of(np.arange(1, 200), np.arange(5), np.arange(1, 61))
    torch.manual_seed(1)
    model = build_model(ModelConfig("sdim", **vocab.sizes()), projection).eval()
    save_model(tmp_path / "model", model, vocab, {})
    rows = _candidates_with_sums(spark, model, vocab, projection, 60, long_len=40, short_len=10)

    plan = scoring_plan(model, rows.column("bse_version"), "v1")
    assert (plan.from_bse, plan.end_to_end, plan.long_side) == (30, 30, "bse+sequence")
    assert {"long_item_ids", "long_bse", "short_item_ids", "long_length"} <= set(plan.columns())
    assert scoring_plan(model, pa.array(["v1"] * 3), "v1").columns().count("long_item_ids") == 0  # all from sums: no sequence read
    scored = ModelReplica(ModelFiles.read(tmp_path / "model"), "1", 40, 10, embedding_version="v1")(rows.select(plan.columns()))
    end_to_end = click_probabilities(model, vocab, shape_for(model.config, 40, 10), rows.drop_columns(["long_bse"]))
    np.testing.assert_allclose(scored.column("score").to_numpy(), end_to_end, rtol=0, atol=1e-6)

    bse_mode = build_model(ModelConfig("sdim", bse_mode=True, **vocab.sizes()), projection)
    with pytest.raises(MissingInputError, match="of 60 candidates, 30 have other or none"):
        scoring_plan(bse_mode, rows.column("bse_version"), "v1")


def test_candidates_whose_sums_are_under_other_embeddings_are_all_scored_end_to_end():
    import pyarrow as pa

    from pipelines.config import Settings
    from pipelines.ctr.base import ModelConfig
    from pipelines.ctr.zoo import build_model
    from pipelines.scoring.batch_scoring import scoring_plan

    config = ModelConfig.for_vocabulary("sdim", {"items": 10, "categories": 3, "users": 5}, Settings())
    plan = scoring_plan(build_model(config, None), pa.array(["bootstrap-v1", None]), "seqlake-ctr-v1")
    assert (plan.embedding_version, plan.from_bse, plan.end_to_end) == (None, 0, 2)
    assert "bse_version" not in plan.columns()
