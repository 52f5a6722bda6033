"""BSE: one SimHash for numpy and torch, bucket sums and interest against plain references."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import torch
from pyspark.sql import functions as F

from pipelines.bse.gather import PUBLISHED_SUMS_SCHEMA
from pipelines.bse.projection import (
    ProjectionMismatchError,
    persisted_projection,
    projection_sha256,
    stored_projection,
)
from pipelines.bse.simhash import bucket_sums, interest, random_projection, simhash_codes
from pipelines.config import BseSettings
from pipelines.errors import MissingInputError
from pipelines.lakehouse.tables import (
    GOLD_ITEM_EMBEDDINGS,
    GOLD_ITEM_SIGNATURES,
    GOLD_USER_BSE,
    GOLD_USER_SEQUENCES,
    table_uri,
)
from pipelines.stages.signatures import build_signatures

RNG = np.random.default_rng(3)


def reference_codes(x: np.ndarray, r: np.ndarray) -> np.ndarray:
    """code_h(x) = sum_t 2^t [x . R[:, h, t] > 0], one dot product at a time."""
    n, (_, hs, bits) = len(x), r.shape
    codes = np.zeros((n, hs), dtype=np.int64)
    for i in range(n):
        for h in range(hs):
            for t in range(bits):
                if float(np.dot(x[i].astype(np.float64), r[:, h, t].astype(np.float64))) > 0:
                    codes[i, h] += 2**t
    return codes


def reference_bse(codes: np.ndarray, x: np.ndarray, buckets: int):
    counts = np.zeros((codes.shape[1], buckets), dtype=np.int64)
    sums = np.zeros((codes.shape[1], buckets, x.shape[1]), dtype=np.float64)
    for i in range(len(x)):
        for h in range(codes.shape[1]):
            counts[h, codes[i, h]] += 1
            sums[h, codes[i, h]] += x[i]
    return counts, sums


def test_numpy_and_torch_give_the_reference_codes():
    r = random_projection(24, 16, 3, seed=5)
    x = RNG.standard_normal((200, 24)).astype(np.float32)
    expected = reference_codes(x, r)
    assert np.array_equal(simhash_codes(x, r), expected)
    assert torch.equal(simhash_codes(torch.from_numpy(x), torch.from_numpy(r)), torch.from_numpy(expected))
    assert expected.min() >= 0 and expected.max() < 8


def test_projection_is_fixed_by_its_seed():
    assert np.array_equal(random_projection(8, 4, 3, 1), random_projection(8, 4, 3, 1))
    assert not np.array_equal(random_projection(8, 4, 3, 1), random_projection(8, 4, 3, 2))


def test_bucket_sums_and_interest_match_the_reference():
    r = random_projection(16, 6, 2, seed=9)
    behaviors = RNG.standard_normal((300, 16)).astype(np.float32)
    codes = simhash_codes(behaviors, r)
    counts, sums = bucket_sums(codes, behaviors, buckets=4)
    ref_counts, ref_sums = reference_bse(codes, behaviors, 4)
    assert np.array_equal(counts, ref_counts)
    np.testing.assert_allclose(sums, ref_sums, atol=1e-6, rtol=0)

    candidates = RNG.standard_normal((5, 16)).astype(np.float32)
    candidate_codes = simhash_codes(candidates, r)
    expected = np.zeros((5, 16))
    for q in range(5):
        for h in range(6):
            bucket = ref_sums[h, candidate_codes[q, h]]
            norm = np.linalg.norm(bucket)
            expected[q] += bucket / norm if norm else 0
        expected[q] /= 6
    np.testing.assert_allclose(interest(sums, candidate_codes), expected, atol=1e-6, rtol=0)


def test_empty_buckets_contribute_zero_to_interest():
    sums = np.zeros((2, 2, 3))
    sums[0, 1] = [3.0, 4.0, 0.0]
    got = interest(sums, np.array([[1, 0]]))
    np.testing.assert_allclose(got, [[0.3, 0.4, 0.0]], atol=1e-12)


def test_spark_signatures_and_user_buckets_equal_the_numpy_reference(spark, generated_nights):
    settings, day = generated_nights.nightly, generated_nights.days[-1]
    rules = settings.bse
    version = rules.bootstrap_version
    projection = stored_projection(settings.lakehouse, rules)

    def load(table):
        return spark.read.format("delta").load(table_uri(settings.lakehouse, table))

    embeddings = {r["item_id"]: np.array(r["vector"], dtype=np.float32) for r in load(GOLD_ITEM_EMBEDDINGS).where(F.col("version") == version).collect()}
    signatures = {r["item_id"]: r for r in load(GOLD_ITEM_SIGNATURES).where(F.col("version") == version).collect()}
    assert set(signatures) == set(embeddings)
    assert {r["projection_sha256"] for r in signatures.values()} == {projection.sha256}
    sample = sorted(embeddings)[:50]
    x = np.stack([embeddings[i] for i in sample])
    assert np.array_equal(np.array([signatures[i]["codes"] for i in sample]), reference_codes(x, projection.matrix))

    users = load(GOLD_USER_SEQUENCES).where(F.col("as_of_date") == F.lit(day)).orderBy(F.desc("length")).limit(3).collect()
    bse = load(GOLD_USER_BSE).where((F.col("as_of_date") == F.lit(day)) & F.col("user_id").isin([u["user_id"] for u in users])).collect()
    assert {r["projection_sha256"] for r in bse} == {projection.sha256}
    for user in users:
        # The long side: the newest examples.train_len behaviors, what SDIM reads end to end.
        long_side = user["item_ids"][-settings.examples.train_len:]
        assert len(user["item_ids"]) > len(long_side)  # the longest histories run past it
        x = np.stack([embeddings[i] for i in long_side])
        ref_counts, ref_sums = reference_bse(reference_codes(x, projection.matrix), x, 1 << rules.bits)
        rows = [r for r in bse if r["user_id"] == user["user_id"]]
        assert len(rows) == int((ref_counts > 0).sum())
        for r in rows:
            assert r["count"] == ref_counts[r["hash_index"], r["code"]]
            # Stored as float32: equal to the float64 reference up to float32 rounding.
            np.testing.assert_allclose(r["vector_sum"], ref_sums[r["hash_index"], r["code"]], rtol=1e-6, atol=1e-6)


def test_rerunning_signatures_replaces_the_dates(spark, generated_nights):
    settings, day = generated_nights.nightly, generated_nights.days[-1]
    first = build_signatures(spark, settings, day)
    second = build_signatures(spark, settings, day)
    assert {**second, "seconds": 0} == {**first, "seconds": 0}


def test_unknown_embedding_version_is_a_clear_error(spark, generated_nights):
    settings, day = generated_nights.nightly, generated_nights.days[-1]
    with pytest.raises(MissingInputError, match="no item embeddings of version 'trained-v9'"):
        build_signatures(spark, settings, day, version="trained-v9")


def test_the_projection_is_drawn_once_and_loaded_ever_after(tmp_path, monkeypatch):
    import pipelines.bse.projection as projections

    rules = BseSettings(embedding_dim=8, signatures=4, bits=3, projection_seed=5, projection_version="p1")
    lakehouse = str(tmp_path)
    with pytest.raises(MissingInputError, match="no BSE projection 'p1'"):
        stored_projection(lakehouse, rules)
    first = persisted_projection(lakehouse, rules)
    assert np.array_equal(first.matrix, random_projection(8, 4, 3, seed=5))
    assert first.sha256 == projection_sha256(first.matrix)

    # Were numpy's random stream to change, consumers would still get the stored hyperplanes.
    monkeypatch.setattr(projections, "random_projection", lambda *args: np.ones((8, 4, 3), dtype=np.float32))
    assert persisted_projection(lakehouse, rules).sha256 == first.sha256
    assert np.array_equal(stored_projection(lakehouse, rules).matrix, first.matrix)

    for key, value in (("projection_seed", 6), ("embedding_dim", 16), ("bits", 2)):
        with pytest.raises(ProjectionMismatchError, match=f"^bse.{key}: {value}, but projection 'p1' has"):
            stored_projection(lakehouse, rules.model_copy(update={key: value}))
    with pytest.raises(ProjectionMismatchError, match="gold/user_bse was built with projection hash 000000000000"):
        first.require_hash("0" * 64, "gold/user_bse")
    # Another version is drawn and stored beside it, from its own seed.
    other = persisted_projection(lakehouse, rules.model_copy(update={"projection_version": "p2", "projection_seed": 6}))
    assert other.sha256 != first.sha256 and stored_projection(lakehouse, rules).sha256 == first.sha256


def test_examples_gather_the_users_bucket_sums_at_the_candidates_codes(spark):
    from pipelines.bse.signatures import candidate_bucket_sums

    day = dt.date(2026, 11, 2)
    before, older = day - dt.timedelta(days=1), day - dt.timedelta(days=2)
    rules = BseSettings(embedding_dim=2, signatures=2, bits=1)
    rows = spark.createDataFrame(
        [(1, "i1", 0, 10, day, before), (1, "i1", 1, 11, day, before), (2, "i2", None, 10, day, before),
         (1, "i1", 2, 12, day, before), (1, "i0", 0, 10, before, older)],
        "user_id long, impression_id string, position int, item_id long, event_date date, features_as_of date",
    )
    signatures = spark.createDataFrame([(10, "v1", [0, 1]), (11, "v1", [1, 1]), (10, "v2", [1, 1])],
                                       "item_id long, version string, codes array<int>")
    user_bse = spark.createDataFrame(
        [(1, before, "v1", 0, 0, [1.0, 2.0]), (1, before, "v1", 1, 1, [3.0, 4.0]), (1, before, "v1", 0, 1, [5.0, 6.0]),
         (1, day, "v1", 0, 0, [9.0, 9.0]), (1, before, "v2", 1, 1, [7.0, 7.0])],
        "user_id long, as_of_date date, version string, hash_index int, code int, vector_sum array<float>",
    )
    # Sums under v1 were published as of the day before; nothing as of the day before that.
    published = spark.createDataFrame([(before, "v1", older, "ab")], PUBLISHED_SUMS_SCHEMA)
    got = {(r["user_id"], r["item_id"], r["event_date"]): (r["long_bse"], r["bse_version"], r["bse_trained_through"])
           for r in candidate_bucket_sums(rows, published, user_bse, signatures, rules).collect()}
    # Item 10 has codes (0, 1) under v1: h0's bucket 0 and h1's bucket 1, as of the day before (not D's row, not v2's).
    assert got[(1, 10, day)] == ([1.0, 2.0, 3.0, 4.0], "v1", older)
    assert got[(1, 11, day)][0] == [5.0, 6.0, 3.0, 4.0]
    assert got[(2, 10, day)][0] == [0.0, 0.0, 0.0, 0.0]  # a user without buckets: zeros
    assert got[(1, 12, day)][0] == [0.0, 0.0, 0.0, 0.0]  # an item without a signature fills no bucket: zeros
    # No sums published for that as-of date: null, never zeros that would read as "no interest".
    assert got[(1, 10, before)] == (None, None, None)


def test_a_nights_bucket_sums_are_the_bases_plus_what_entered_the_long_side_minus_what_left_it(spark):
    from pipelines.bse.signatures import updated_bucket_sums, user_bucket_sums

    base_day, day = dt.date(2026, 11, 1), dt.date(2026, 11, 2)
    at_base, at_day = 1_793_534_400_000, 1_793_620_800_000  # noon of base_day and of day (UTC), in ms
    rules = BseSettings(embedding_dim=2, signatures=2, bits=1)
    # Item i has codes (i % 2, i // 2 % 2) and vector (i, 10 i).
    items = spark.createDataFrame([(i, [float(i), 10.0 * i], [i % 2, i // 2 % 2]) for i in range(1, 9)],
                                  "item_id long, vector array<float>, codes array<int>")
    schema = "user_id long, item_ids array<bigint>, timestamps array<bigint>, as_of_date date"
    base = spark.createDataFrame([
        (1, [1, 2, 3], [at_base] * 3, base_day),  # its long side (3) is full: 6 and 7 push out 1 and 2
        (2, [4], [at_base], base_day),            # nothing new: keeps its rows
        (3, [5], [at_base], base_day),            # more new behaviors than the long side holds
    ], schema)
    now = spark.createDataFrame([
        (1, [1, 2, 3, 6, 7], [at_base] * 3 + [at_day] * 2, day),
        (2, [4], [at_base], day),
        (3, [5, 1, 2, 3, 8], [at_base] + [at_day] * 4, day),
        (4, [6], [at_day], day),  # a new user
    ], schema)
    base_sums = user_bucket_sums(base, items, rules.bits, 3)

    def rows(frame):
        return sorted((r["user_id"], r["as_of_date"], r["hash_index"], r["code"], r["count"], list(r["vector_sum"]))
                      for r in frame.collect())

    updated = rows(updated_bucket_sums(base_sums, base, now, base_day, items, rules, 3))
    assert updated == rows(user_bucket_sums(now, items, rules.bits, 3))
    # User 1's long side is now 3, 6, 7: codes (1, 1), (0, 1), (1, 1).
    assert [r[2:] for r in updated if r[0] == 1] == [(0, 0, 1, [6.0, 60.0]), (0, 1, 2, [10.0, 100.0]),
                                                     (1, 1, 3, [16.0, 160.0])]
    assert [r[1:] for r in updated if r[0] == 2] == [(day, 0, 0, 1, [4.0, 40.0]), (day, 1, 0, 1, [4.0, 40.0])]
    # Sums of a shorter long side than the one the update assumes (examples.train_len changed):
    # removing the behaviors that left would leave a bucket below zero.
    with pytest.raises(Exception, match="do not hold the long side of its snapshot"):
        updated_bucket_sums(user_bucket_sums(base, items, rules.bits, 1), base, now, base_day, items, rules, 3).collect()


def test_bse_sums_of_a_3000_behavior_history_equal_end_to_end_sdim_over_the_long_side(spark, tmp_path):
    """The signatures job hashes the newest examples.train_len (1,024) behaviors
    of a 3,000-behavior history, the same long side SDIM reads end to end: the
    bucket sums it stores, gathered at each candidate's codes, equal the
    model's own, and BSE mode scores as end to end does."""
    import pyarrow as pa

    from pipelines.bse.embeddings import EMBEDDINGS_SCHEMA
    from pipelines.ctr.base import ModelConfig
    from pipelines.ctr.batches import BatchShape, Vocabulary, to_batch
    from pipelines.ctr.embeddings import item_embedding_rows
    from pipelines.ctr.zoo import build_model
    from pipelines.lakehouse.writes import replace_date_partitions, replace_where
    from tests.conftest import settings_in

    settings = settings_in(tmp_path, "bse.embedding_dim=8", "bse.signatures=4")
    rules, long_len = settings.bse, settings.examples.train_len
    assert long_len == 1024
    projection = persisted_projection(settings.lakehouse, rules)
    items = np.arange(1, 401)
    vocab = Vocabulary.of(items, np.arange(6), [1])
    torch.manual_seed(3)
    model = build_model(ModelConfig("sdim", embedding_dim=8, signatures=4, bits=3,
                                    **vocab.sizes()), projection.matrix).eval()
    replace_where(spark.createDataFrame(item_embedding_rows(model, vocab, "test-v1").to_pandas(), schema=EMBEDDINGS_SCHEMA),
                  settings.lakehouse, GOLD_ITEM_EMBEDDINGS, "version = 'test-v1'")
    day = dt.date(2026, 11, 2)
    history = RNG.integers(1, 401, 3000)
    start_ms = int(dt.datetime(2026, 10, 1, tzinfo=dt.UTC).timestamp() * 1000)
    stamps = [start_ms + 60_000 * i for i in range(3000)]
    sequence = spark.createDataFrame(
        [(1, history.tolist(), [int(i % 6) for i in history], stamps, [1000] * 3000, ["click"] * 3000, 3000, day)],
        "user_id long, item_ids array<long>, category_ids array<int>, timestamps array<long>, dwell_ms array<long>, "
        "actions array<string>, length int, as_of_date date",
    )
    replace_date_partitions(sequence, settings.lakehouse, GOLD_USER_SEQUENCES, day)
    build_signatures(spark, settings, day, version="test-v1")

    stored = spark.read.format("delta").load(table_uri(settings.lakehouse, GOLD_USER_BSE)).collect()
    sums = np.zeros((4, 8, 8), dtype=np.float32)
    for r in stored:
        sums[r["hash_index"], r["code"]] = r["vector_sum"]
    assert {r["count"] for r in stored if r["hash_index"] == 0} and sum(r["count"] for r in stored if r["hash_index"] == 0) == long_len
    candidates = items[:60]
    codes = simhash_codes(model.item.weight.detach().numpy()[candidates], projection.matrix)
    gathered = [sums[np.arange(4), c].ravel() for c in codes]
    n = len(candidates)
    rows = pa.table({
        "user_id": [1] * n, "item_id": candidates, "category_id": pa.array(candidates % 6, pa.int32()),
        "position": pa.array([0] * n, pa.int32()), "label": [0] * n, "impression_ts": [stamps[-1] + 60_000] * n,
        # What training_examples gives a model: the newest train_len behaviors.
        "long_item_ids": pa.array([history[-long_len:]] * n, pa.list_(pa.int64())),
        "long_category_ids": pa.array([(history[-long_len:] % 6).astype(np.int32)] * n, pa.list_(pa.int32())),
        "long_timestamps": pa.array([stamps[-long_len:]] * n, pa.list_(pa.int64())),
        **{c: [1.0] * n for c in ("user_impressions", "user_clicks", "user_ctr", "user_dwell_mean_ms",
                                   "item_impressions", "item_clicks", "item_ctr", "item_dwell_mean_ms")},
        "long_bse": pa.array(gathered, pa.list_(pa.float32())),
    })
    end_to_end_batch = to_batch(rows, vocab, BatchShape(long_len, 50, sdim_inputs="e2e", signatures=4, embedding_dim=8))
    with torch.no_grad():
        own = model.bucket_sums(end_to_end_batch).numpy()
        np.testing.assert_allclose(np.stack(gathered).reshape(n, 4, 8), own, rtol=0, atol=1e-4)
        twin = build_model(ModelConfig(**{**model.config.__dict__, "bse_mode": True}), projection.matrix)
        twin.load_state_dict(model.state_dict())
        bse_batch = to_batch(rows, vocab, BatchShape(long_len, 50, sdim_inputs="bse", signatures=4, embedding_dim=8))
        torch.testing.assert_close(twin.eval()(bse_batch), model(end_to_end_batch), atol=1e-5, rtol=0)
