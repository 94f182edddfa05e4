"""Export a trained encoder to ONNX, with a parity batch the runtime tests check against.

Writes into one folder what the runtime (``stream/adapters/encoder.py``) needs and nothing
else: ``encoder.onnx`` (input ``tokens`` (batch, max_len) int64; outputs ``view_query``,
``buy_query``, ``target`` (batch, dim) float32, unit norm), ``vocab.json`` (the tokenizer), and
``parity.npz``: a fixed token batch and torch's outputs for it, so a test without torch can
prove onnxruntime computes the same embeddings (≤ 1e-5).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch

from models.pfeed.model import ItemEncoder

OUTPUTS = ("view_query", "buy_query", "target")


def parity_batch(tokens: np.ndarray, size: int = 64, seed: int = 0) -> np.ndarray:
    """A fixed batch: seeded real items plus a bare item (id bucket only) and a padded row."""
    rng = np.random.default_rng(seed)
    rows = tokens[np.sort(rng.choice(len(tokens), size=min(size, len(tokens)), replace=False))]
    bare = np.zeros_like(rows[:1])
    bare[0, 0] = tokens[0, 0]
    return np.concatenate([rows, bare]).astype(np.int64)


def export(
    model: ItemEncoder, vocab: Path, tokens: np.ndarray, out: Path, meta: dict[str, object]
) -> Path:
    """ONNX + vocabulary + parity batch + ``model.json`` (config and card figures) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    batch = parity_batch(tokens)
    example = torch.from_numpy(batch[:8])
    path = out / "encoder.onnx"
    torch.onnx.export(
        model,
        (example,),
        str(path),
        input_names=["tokens"],
        output_names=list(OUTPUTS),
        dynamic_axes={"tokens": {0: "batch"}, **{name: {0: "batch"} for name in OUTPUTS}},
        opset_version=17,
        dynamo=False,
    )
    with torch.no_grad():
        expected = [t.numpy() for t in model(torch.from_numpy(batch))]
    np.savez(out / "parity.npz", tokens=batch, **dict(zip(OUTPUTS, expected, strict=True)))
    if vocab.resolve() != (out / "vocab.json").resolve():
        shutil.copyfile(vocab, out / "vocab.json")
    info = {"config": model.cfg.to_dict(), "outputs": list(OUTPUTS), **meta}
    (out / "model.json").write_text(json.dumps(info, indent=2, ensure_ascii=False))
    return path
