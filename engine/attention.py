"""Seed 000's embedding selection: which tokens does a sequence attend to most?

Seed 000 ("Embedding Selection Algorithm") sums the attention heads, removes each token's
attention to itself with the adjacency matrix A = 1 - I, sums the result over its rows,
b_j = sum_i B_ij, and keeps the top-k columns j: the tokens the others look at most, which
then feed a weak retrieval memory.

The seed writes the masked matrix as the matrix product B = A (sum of heads). Its stated
intent ("so that the attention scores from tokens to themselves are not considered") and its
worked example (zeros on the diagonal of B) need the element-wise product A * S instead: a
matrix product mixes rows and does not zero the diagonal. ``mask="elementwise"`` is the
default; ``mask="product"`` computes the formula as printed, and ``mask="none"`` keeps the
diagonal. The worked example of the seed::

    B = [[0, 8.41, 3.29], [9.2, 0, 1.6], [5.1, 3.8, 0]]  ->  b = [14.3, 12.21, 4.89], top-1 = 0

Special tokens ([CLS], [SEP]) soak up attention in BERT models; ``exclude`` removes their
rows and columns before the sums, so they are neither counted nor selected.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["MASKS", "adjacency", "head_sum", "mask_attention", "column_sums", "top_k",
           "select_important_tokens", "merge_word_pieces"]

MASKS = ("elementwise", "product", "none")


def adjacency(n: int) -> np.ndarray:
    """A = 1 - I (n x n): 0 on the diagonal, 1 elsewhere (seed 000)."""
    return 1.0 - np.eye(int(n))


def _heads(heads) -> np.ndarray:
    h = np.asarray(heads, dtype=np.float64)
    if h.ndim not in (3, 4) or h.shape[-1] != h.shape[-2]:
        raise ValueError("heads must have shape (H, T, T) or (L, H, T, T), got "
                         f"{np.shape(heads)}")
    if not np.all(np.isfinite(h)):
        raise ValueError("heads must be finite numbers")
    return h


def head_sum(heads) -> np.ndarray:
    """The sum of the attention heads, S = sum_H H (T, T); over every layer too for (L, H, T, T)."""
    h = _heads(heads)
    return h.reshape(-1, h.shape[-2], h.shape[-1]).sum(axis=0)


def mask_attention(S: np.ndarray, mask: str = "elementwise") -> np.ndarray:
    """B from the head sum S: A * S (element-wise, the default), A @ S (the seed's formula as
    printed) or S unchanged ("none")."""
    S = np.asarray(S, dtype=np.float64)
    if mask == "elementwise":
        B = S.copy()
        np.fill_diagonal(B, 0.0)
        return B
    if mask == "product":
        return adjacency(S.shape[0]) @ S
    if mask == "none":
        return S.copy()
    raise ValueError(f"mask must be one of {', '.join(MASKS)}, got {mask!r}")


def column_sums(B: np.ndarray) -> np.ndarray:
    """b_j = sum_i B_ij: how much attention token j receives."""
    return np.asarray(B, dtype=np.float64).sum(axis=0)


def top_k(scores: np.ndarray, k: int, allowed: np.ndarray | None = None) -> np.ndarray:
    """The indices of the k largest scores in decreasing order (ties: the lower index first),
    among the ``allowed`` ones (a boolean mask) when given."""
    scores = np.asarray(scores, dtype=np.float64)
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    order = np.argsort(-scores, kind="stable")
    if allowed is not None:
        order = order[np.asarray(allowed, dtype=bool)[order]]
    return order[:k]


def select_important_tokens(heads, k: int, mask: str = "elementwise",
                            exclude: Sequence[int] = ()) -> tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray]:
    """Seed 000's selection: the top-k columns of the masked head sum.

    Parameters
    ----------
    heads : array_like
        Attention probabilities (H, T, T) of one layer, or (L, H, T, T) to sum every layer.
    k : int
        How many tokens to select (fewer when fewer are allowed).
    mask : {"elementwise", "product", "none"}
        How A = 1 - I is applied (see the module docstring).
    exclude : sequence of int
        Token positions left out entirely (their rows and columns of B are zeroed, they are
        never selected): [CLS] and [SEP], for example.

    Returns
    -------
    indices : ndarray of int
        The selected columns, highest column sum first.
    scores : ndarray
        b, the column sums of B for all T tokens (0 for excluded ones).
    B : ndarray
        The masked matrix (T, T).
    """
    S = head_sum(heads)
    B = mask_attention(S, mask)
    T = B.shape[0]
    allowed = np.ones(T, dtype=bool)
    drop = [int(i) for i in exclude]
    for i in drop:
        if not -T <= i < T:
            raise ValueError(f"exclude holds {i}, outside 0..{T - 1}")
    if drop:
        allowed[drop] = False
        B[drop, :] = 0.0
        B[:, drop] = 0.0
    scores = column_sums(B)
    return top_k(scores, k, allowed), scores, B


def merge_word_pieces(tokens: Sequence[str], scores: np.ndarray,
                      word_ids: Sequence[int | None]) -> tuple[list[str], np.ndarray,
                                                               list[list[int]]]:
    """Merge word pieces ("play", "##ing") into words, adding their scores.

    ``word_ids`` gives each token's word (None for special tokens, which stay on their own).
    Returns the words, their scores (the sum over their pieces: the attention the whole word
    receives) and, per word, the token positions it covers.
    """
    if not len(tokens) == len(scores) == len(word_ids):
        raise ValueError("tokens, scores and word_ids must have the same length")
    words: list[str] = []
    groups: list[list[int]] = []
    last = object()
    for i, (token, word) in enumerate(zip(tokens, word_ids)):
        if word is not None and word == last:
            words[-1] += token[2:] if token.startswith("##") else token
            groups[-1].append(i)
        else:
            words.append(token)
            groups.append([i])
        last = word if word is not None else object()
    s = np.asarray(scores, dtype=np.float64)
    return words, np.array([s[g].sum() for g in groups]), groups
