"""BSE: one SimHash for numpy and torch, bucket sums and interest against plain references."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import torch
from pyspark.sql import functions as F

from jobs.build_sequences import build_sequences
from jobs.build_signatures import build_signatures
from pipelines.bse.simhash import bucket_sums, interest, random_projection, simhash_codes
from pipelines.lakehouse.tables import (
    GOLD_ITEM_EMBEDDINGS,
    GOLD_ITEM_SIGNATURES,
    GOLD_USER_BSE,
    GOLD_USER_SEQUENCES,
    table_uri,
)

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


@pytest.fixture(scope="module")
def bse_world(spark, cleaned_small_world):
    day = cleaned_small_world.generator.start_date + dt.timedelta(days=1)
    build_sequences(spark, cleaned_small_world, day)
    figures = build_signatures(spark, cleaned_small_world, day, cleaned_small_world.bse.bootstrap_version)
    return cleaned_small_world, day, figures


def test_spark_signatures_and_user_buckets_equal_the_numpy_reference(spark, bse_world):
    settings, day, figures = bse_world
    rules = settings.bse
    version = rules.bootstrap_version
    assert 0 < figures["bucket_occupancy"] <= 1

    def load(table):
        return spark.read.format("delta").load(table_uri(settings.lakehouse, table))

    embeddings = {r["item_id"]: np.array(r["vector"], dtype=np.float32) for r in load(GOLD_ITEM_EMBEDDINGS).where(F.col("version") == version).collect()}
    signatures = {r["item_id"]: r["codes"] for r in load(GOLD_ITEM_SIGNATURES).where(F.col("version") == version).collect()}
    assert set(signatures) == set(embeddings)
    sample = sorted(embeddings)[:50]
    x = np.stack([embeddings[i] for i in sample])
    assert np.array_equal(np.array([signatures[i] for i in sample]), reference_codes(x, rules.projection()))

    users = load(GOLD_USER_SEQUENCES).where(F.col("as_of_date") == F.lit(day)).orderBy(F.desc("length")).limit(3).collect()
    bse = load(GOLD_USER_BSE).where((F.col("as_of_date") == F.lit(day)) & F.col("user_id").isin([u["user_id"] for u in users])).collect()
    for user in users:
        x = np.stack([embeddings[i] for i in user["item_ids"]])
        ref_counts, ref_sums = reference_bse(reference_codes(x, rules.projection()), x, 1 << rules.bits)
        rows = [r for r in bse if r["user_id"] == user["user_id"]]
        assert len(rows) == int((ref_counts > 0).sum())
        for r in rows:
            assert r["count"] == ref_counts[r["hash_index"], r["code"]]
            # Stored as float32: equal to the float64 reference up to float32 rounding.
            np.testing.assert_allclose(r["vector_sum"], ref_sums[r["hash_index"], r["code"]], rtol=1e-6, atol=1e-6)


def test_rerunning_signatures_replaces_the_date(spark, bse_world):
    settings, day, first = bse_world
    second = build_signatures(spark, settings, day, settings.bse.bootstrap_version)
    assert {**second, "seconds": 0} == {**first, "seconds": 0}


def test_unknown_embedding_version_is_a_clear_error(spark, bse_world):
    settings, day, _ = bse_world
    with pytest.raises(ValueError, match="no item embeddings of version 'trained-v9'"):
        build_signatures(spark, settings, day, "trained-v9")
