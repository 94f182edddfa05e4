"""The Pfeed item encoder at runtime: onnxruntime only (torch is a training-time extra).

One forward pass gives an item's three embeddings (view-query, buy-query, target). The catalog
is embedded in batches: per-item calls would pay onnxruntime's fixed per-call overhead tens of
thousands of times. Items are tokenised by ``stream.domain.item_tokens`` exactly as in training.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tqdm import tqdm

from stream.domain.item_tokens import ItemTokenizer

OUTPUTS = ("view_query", "buy_query", "target")
#: committed with the repository (models/encoder), overridable with RECSTREAM_MODEL_DIR
BUNDLED_MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "encoder"


def default_model_dir() -> Path:
    return Path(os.environ.get("RECSTREAM_MODEL_DIR") or BUNDLED_MODEL_DIR)


class OnnxItemEncoder:
    """``encoder.onnx`` + ``vocab.json`` from ``model_dir``; embeddings are (3, n, dim) float32."""

    def __init__(self, model_dir: Path | None = None, threads: int = 1) -> None:
        folder = model_dir or default_model_dir()
        onnx_path = folder / "encoder.onnx"
        if not onnx_path.is_file():
            raise FileNotFoundError(f"{onnx_path} not found: run `recstream model export`")
        self.tokenizer = ItemTokenizer.from_dict(json.loads((folder / "vocab.json").read_text()))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(onnx_path), opts, providers=["CPUExecutionProvider"]
        )
        self.dim = int(self.session.get_outputs()[0].shape[1])

    def run(self, tokens: np.ndarray) -> np.ndarray:
        """Embeddings of a token batch (the model's raw interface; used by the parity test)."""
        outs = self.session.run(list(OUTPUTS), {"tokens": tokens.astype(np.int64, copy=False)})
        return np.stack([np.asarray(o, dtype=np.float32) for o in outs])

    def embed(
        self,
        messages: Sequence[Mapping[str, Any]],
        batch: int = 1024,
        progress: bool = False,
        tokens: np.ndarray | None = None,
    ) -> np.ndarray:
        """Embeddings of catalog messages, ``batch`` items per onnxruntime call. ``tokens``:
        their token rows, when the caller has them (a worker's update: its token check made
        them on the event loop; tokenising again is 10–18 ms of Python per 1,024 messages)."""
        out = np.zeros((3, len(messages), self.dim), dtype=np.float32)
        starts: Iterable[int] = range(0, len(messages), batch)
        if progress:
            starts = tqdm(starts, desc="embed", unit="batch", total=-(-len(messages) // batch))
        for start in starts:
            chunk = messages[start : start + batch]
            rows = self.tokenizer.encode_many(chunk) if tokens is None else tokens[start:][:batch]
            out[:, start : start + len(chunk)] = self.run(rows)
        return out
