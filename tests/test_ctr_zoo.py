"""The two-stage long models retrieve what their rule says: SIM the newest
behaviors of the candidate's category, ETA the nearest by SimHash Hamming
distance, TWIN the top scores of the same relevance that weights them."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch

from pipelines.bse.simhash import random_projection
from pipelines.ctr.base import ModelConfig, top_k
from pipelines.ctr.batches import BatchShape, Vocabulary, to_batch
from pipelines.ctr.zoo import build_model

NOW = 10**12
STATS = ["user_impressions", "user_clicks", "user_ctr", "user_dwell_mean_ms",
         "item_impressions", "item_clicks", "item_ctr", "item_dwell_mean_ms"]
# Items 1..6 are vocabulary indices 1..6; categories 1..3 are indices 1..3.
VOCAB = Vocabulary.of(np.arange(1, 7), np.arange(1, 4), np.array([1, 2]))


def _one_user(items: list[int], categories: list[int], item: int, category: int | None) -> dict[str, torch.Tensor]:
    """A batch of one impression of `item` after the long sequence `items` (oldest first)."""
    rows = pa.table({
        "user_id": [1], "item_id": [item], "category_id": pa.array([category], pa.int32()),
        "position": pa.array([0], pa.int32()), "label": [1], "impression_ts": [NOW],
        "long_item_ids": pa.array([items], pa.list_(pa.int64())),
        "long_category_ids": pa.array([categories], pa.list_(pa.int32())),
        "long_timestamps": pa.array([[NOW - 1000 * (len(items) - k) for k in range(len(items))]], pa.list_(pa.int64())),
        **{c: [1.0] for c in STATS},
    })
    return to_batch(rows, VOCAB, BatchShape(long_len=8, short_len=2))


def _config(name: str, k: int) -> ModelConfig:
    return ModelConfig(model=name, embedding_dim=4, signatures=2, bits=2, retrieve_k=k, **VOCAB.sizes())


def test_top_k_keeps_the_most_relevant_real_positions_and_pads_a_short_row_with_masked_ones():
    relevance = torch.tensor([[0.1, 0.9, 0.5, 0.7], [0.3, 0.2, 0.8, 0.1]])
    mask = torch.tensor([[True, True, True, False], [False, False, True, False]])
    index, real = top_k(relevance, mask, 2)
    assert index[0].tolist() == [1, 2] and real[0].tolist() == [True, True]
    assert index[1, 0] == 2 and real[1].tolist() == [True, False]


def test_sim_retrieves_the_newest_behaviors_of_the_candidates_category():
    model = build_model(_config("sim", k=2))
    # Positions 0..5; category 1 at 0, 2 and 4; the candidate (item 6) is of category 1.
    batch = _one_user([1, 2, 3, 4, 5, 1], [1, 2, 1, 3, 1, 2], item=6, category=1)
    index, real = model.retrieved(batch)
    assert sorted(batch["long_items"][0, index[0]].tolist()) == [3, 5] and real.all()
    # Fewer behaviors of the category than k: the rest is masked; an unknown category retrieves nothing.
    few = build_model(_config("sim", k=4)).retrieved(batch)
    assert sorted(batch["long_items"][0, few[0][0][few[1][0]]].tolist()) == [1, 3, 5]
    assert not model.retrieved(_one_user([1, 2], [1, 2], item=6, category=None))[1].any()


def test_eta_retrieves_the_behaviors_nearest_the_candidate_in_hamming_distance():
    # 4 hash bits, the identity projection: an embedding's bits are its signs.
    projection = np.eye(4, dtype=np.float32).reshape(4, 2, 2)
    model = build_model(_config("eta", k=2), projection)
    signs = {1: [1, 1, 1, 1], 2: [1, 1, 1, -1], 3: [-1, -1, -1, -1], 4: [-1, 1, -1, 1], 5: [1, 1, -1, -1], 6: [1, 1, 1, 1]}
    with torch.no_grad():
        for item, bits in signs.items():
            model.item.weight[item] = torch.tensor(bits, dtype=torch.float32)
    # The candidate is item 6 (bits ++++): distances to items 1..5 are 0, 1, 4, 2, 2.
    batch = _one_user([2, 3, 1, 4, 5], [1, 1, 1, 1, 1], item=6, category=1)
    assert model.hamming(batch)[0, -5:].tolist() == [1, 4, 0, 2, 2]
    index, real = model.retrieved(batch)
    assert batch["long_items"][0, index[0]].tolist() == [1, 2] and real.all()
    # Among equal distances the newer behavior wins: k = 3 adds item 5 (position 4), not item 4.
    three = build_model(_config("eta", k=3), projection)
    three.load_state_dict(model.state_dict())
    assert batch["long_items"][0, three.retrieved(batch)[0][0]].tolist() == [1, 2, 5]


def test_twin_weights_exactly_the_behaviors_its_relevance_retrieves_by_the_softmax_of_the_same_scores():
    torch.manual_seed(3)
    model = build_model(_config("twin", k=3))
    batch = _one_user([1, 2, 3, 4, 5, 6], [1, 2, 3, 1, 2, 3], item=2, category=2)
    target = model.target(batch)
    scores = model.relevance(batch, target)[0]
    top = scores.topk(3).indices
    weights = torch.softmax(scores[top], dim=0)
    expected = (weights[:, None] * model.value(model.behaviors_at(batch, top[None, :]))[0]).sum(0)
    assert torch.allclose(model.long_interest(batch, target)[0], expected, atol=1e-6)
    # A behavior it did not retrieve has no effect on the interest: its item embedding gets no gradient.
    left_out = [int(item) for p, item in enumerate(batch["long_items"][0]) if p not in top and item != batch["item"][0]]
    model.long_interest(batch, target).sum().backward()
    assert left_out and all(model.item.weight.grad[item].abs().sum() == 0 for item in left_out)


@pytest.mark.parametrize("name", ["sim", "eta", "twin"])
def test_a_two_stage_model_reads_at_most_k_behaviors_whatever_the_length(name):
    model = build_model(_config(name, k=2), random_projection(4, 2, 2, seed=1) if name == "eta" else None)
    batch = _one_user([1, 2, 3, 4, 5, 6, 1, 2], [1, 2, 3, 1, 2, 3, 1, 2], item=3, category=3)
    index, real = (model.retrieved(batch) if name != "twin"
                   else top_k(model.relevance(batch, model.target(batch)), batch["long_mask"], 2))
    assert index.shape == (1, 2) and real.sum() <= 2


def test_items_shown_too_rarely_share_the_unknown_embedding_and_users_can_go_without_one(tmp_path):
    import datetime as dt

    from deltalake import write_deltalake

    from pipelines.ctr.datasets import vocabulary
    from pipelines.lakehouse.tables import GOLD_ITEM_STATS, GOLD_USER_STATS, table_uri

    day = dt.date(2026, 11, 3)
    write_deltalake(table_uri(str(tmp_path), GOLD_ITEM_STATS), pa.table({
        "item_id": [1, 2, 3], "category_id": pa.array([1, 1, 2], pa.int32()), "item_impressions": [50, 49, 400],
        "as_of_date": pa.array([day] * 3, pa.date32()),
    }))
    write_deltalake(table_uri(str(tmp_path), GOLD_USER_STATS), pa.table({"user_id": [7], "as_of_date": pa.array([day], pa.date32())}))
    assert vocabulary(str(tmp_path), day).items.tolist() == [1, 2, 3]
    seen = vocabulary(str(tmp_path), day, min_item_impressions=50)
    # Item 2 (49 impressions) is unknown; its category stays known.
    assert seen.items.tolist() == [1, 3] and seen.categories.tolist() == [1, 2] and seen.users.tolist() == [7]

    without_users = build_model(ModelConfig(model="din", embedding_dim=4, user_embedding=False, **VOCAB.sizes()))
    assert without_users.user is None
    logits = without_users(_one_user([1, 2, 3], [1, 2, 3], item=4, category=1))
    assert logits.shape == (1,) and torch.isfinite(logits).all()
