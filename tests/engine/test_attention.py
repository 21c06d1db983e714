"""Seed 000's token selection: its worked example, and properties on random heads."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from engine.attention import (
    adjacency,
    column_sums,
    head_sum,
    mask_attention,
    merge_word_pieces,
    select_important_tokens,
    top_k,
)

SEED_B = np.array([[0, 8.41, 3.29], [9.2, 0, 1.6], [5.1, 3.8, 0]])


def test_the_worked_example_of_seed_000():
    # Two heads whose sum has B off the diagonal and something on it (the mask removes it).
    S = SEED_B + np.diag([2.5, 1.0, 7.0])
    heads = np.stack([0.25 * S, 0.75 * S])
    indices, scores, B = select_important_tokens(heads, k=1)
    np.testing.assert_allclose(B, SEED_B, atol=1e-12)
    np.testing.assert_allclose(scores, [14.3, 12.21, 4.89], atol=1e-12)
    assert indices.tolist() == [0]
    indices, _, _ = select_important_tokens(heads, k=3)
    assert indices.tolist() == [0, 1, 2]


def test_the_literal_matrix_product_does_not_zero_the_diagonal():
    S = SEED_B + np.diag([2.5, 1.0, 7.0])
    B = mask_attention(S, "product")
    np.testing.assert_allclose(B, adjacency(3) @ S)
    assert np.all(np.diag(B) != 0)  # why the element-wise mask is the default
    np.testing.assert_allclose(mask_attention(S, "none"), S)
    with pytest.raises(ValueError, match="mask must be one of"):
        mask_attention(S, "diagonal")


def _random_heads(seed, shape):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=shape)
    e = np.exp(logits)
    return e / e.sum(axis=-1, keepdims=True)  # rows are probability distributions


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), H=st.integers(1, 12), T=st.integers(2, 40),
       k=st.integers(1, 45))
def test_properties_on_random_heads(seed, H, T, k):
    heads = _random_heads(seed, (H, T, T))
    indices, scores, B = select_important_tokens(heads, k)
    S = heads.sum(axis=0)
    # The mask zeroes exactly the diagonal.
    off = ~np.eye(T, dtype=bool)
    assert np.all(np.diag(B) == 0.0)
    np.testing.assert_array_equal(B[off], S[off])
    # Summing over heads commutes with masking.
    np.testing.assert_allclose(B, sum(mask_attention(h) for h in heads), rtol=1e-12, atol=1e-12)
    # Top-k are the k largest column sums, in decreasing order.
    np.testing.assert_allclose(scores, B.sum(axis=0))
    assert len(indices) == min(k, T)
    assert np.all(np.diff(scores[indices]) <= 0)
    rest = np.setdiff1d(np.arange(T), indices)
    if rest.size:
        assert scores[indices].min() >= scores[rest].max()


@given(arrays(np.float64, (2, 3, 5, 5), elements=st.floats(0, 1)))
@settings(max_examples=30, deadline=None)
def test_all_layers_are_summed_for_a_4d_input(heads):
    np.testing.assert_allclose(head_sum(heads), heads.sum(axis=(0, 1)))


def test_excluded_tokens_are_never_counted_or_selected():
    heads = _random_heads(3, (4, 6, 6))
    heads[:, :, 0] += 5.0  # [CLS] soaks up attention
    indices, scores, B = select_important_tokens(heads, k=2, exclude=[0, 5])
    assert 0 not in indices and 5 not in indices
    assert scores[0] == 0.0 and scores[5] == 0.0
    assert np.all(B[[0, 5], :] == 0) and np.all(B[:, [0, 5]] == 0)
    with_cls, _, _ = select_important_tokens(heads, k=1)
    assert with_cls.tolist() == [0]
    with pytest.raises(ValueError, match="outside"):
        select_important_tokens(heads, k=1, exclude=[6])


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="shape"):
        select_important_tokens(np.ones((3, 4)), 1)
    with pytest.raises(ValueError, match="finite"):
        select_important_tokens(np.full((1, 2, 2), np.nan), 1)
    with pytest.raises(ValueError, match="at least 1"):
        top_k(np.ones(3), 0)


def test_ties_keep_the_lower_index_first():
    assert top_k(np.array([1.0, 3.0, 3.0, 0.5]), 3).tolist() == [1, 2, 0]


def test_word_pieces_merge_into_words_with_summed_scores():
    tokens = ["[CLS]", "the", "play", "##ing", "##s", "cat", "[SEP]"]
    word_ids = [None, 0, 1, 1, 1, 2, None]
    scores = np.array([5.0, 1.0, 0.5, 0.25, 0.25, 2.0, 4.0])
    words, word_scores, groups = merge_word_pieces(tokens, scores, word_ids)
    assert words == ["[CLS]", "the", "playings", "cat", "[SEP]"]
    np.testing.assert_allclose(word_scores, [5.0, 1.0, 1.0, 2.0, 4.0])
    assert groups[2] == [2, 3, 4]
    np.testing.assert_allclose(column_sums(np.eye(3)), [1, 1, 1])
