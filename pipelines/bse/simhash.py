"""The one SimHash of seqlake, shared by Spark (numpy, inside Arrow UDFs) and torch.

A fixed random projection R of shape (d, H, tau), drawn from N(0, 1) with a
recorded seed; for an embedding x and hash function h,
code_h(x) = sum over t of 2^t * [x . R[:, h, t] > 0], so every item gets H codes
in [0, 2^tau). The functions below use only operations that numpy arrays and
torch tensors share, so both libraries run this same code.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def random_projection(dim: int, signatures: int, bits: int, seed: int) -> np.ndarray:
    """R, float32 of shape (dim, signatures, bits); torch.from_numpy(R) for the model."""
    return np.random.default_rng(seed).standard_normal((dim, signatures, bits)).astype(np.float32)


def simhash_codes(vectors: Any, projection: Any) -> Any:
    """Codes of shape (n, H) for `vectors` (n, d): int64 numpy array or torch tensor,
    following the library of the arguments."""
    dim, signatures, bits = projection.shape
    positive = (vectors @ projection.reshape(dim, signatures * bits)) > 0
    positive = positive.reshape(-1, signatures, bits)
    codes = positive[..., 0] * 1
    for t in range(1, bits):
        codes = codes + positive[..., t] * (1 << t)
    return codes


def bucket_sums(
    codes: np.ndarray, vectors: np.ndarray, buckets: int, signs: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """For one user: per hash function h and code c, the count of behaviors with
    code_h = c and the sum of their vectors: shapes (H, buckets) and (H, buckets, d).
    `signs` (+1 or -1 per behavior, default +1) turns them into the change of
    those counts and sums when the -1 behaviors leave and the +1 arrive."""
    n, signatures = codes.shape
    # One-hot (n, H * buckets) times the vectors: one dense product instead of
    # H scatter-adds, fast on any BLAS; accumulated in float64.
    one_hot = np.zeros((n, signatures * buckets), dtype=np.float64)
    weights = 1 if signs is None else np.asarray(signs, dtype=np.float64).repeat(signatures)
    one_hot[np.arange(n).repeat(signatures), (codes + np.arange(signatures) * buckets).ravel()] = weights
    sums = (one_hot.T @ vectors.astype(np.float64)).reshape(signatures, buckets, -1)
    counts = np.rint(one_hot.sum(0)).astype(np.int64).reshape(signatures, buckets)
    return counts, sums


def interest(sums: np.ndarray, candidate_codes: np.ndarray) -> np.ndarray:
    """SDIM interest of a user in candidates: the mean over h of the L2-normalized
    sum in bucket code_h(q), an empty bucket contributing zero.
    sums (H, buckets, d), candidate_codes (m, H) -> (m, d)."""
    picked = sums[np.arange(sums.shape[0]), candidate_codes]  # (m, H, d)
    norms = np.linalg.norm(picked, axis=-1, keepdims=True)
    return (picked / np.where(norms == 0, 1, norms)).mean(axis=1)
