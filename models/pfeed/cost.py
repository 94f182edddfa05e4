"""Inference cost of SIMO vs SISO, timed interleaved so machine noise hits both alike.

Cost does not depend on the weights, so freshly initialised encoders are exported and timed in
alternating rounds (onnxruntime, 1 thread, 4,096 real items in batches of 1,024); the median
per variant is reported. Writes ``models/card/cost.json``: ``python -m models.pfeed.cost``.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from models.pfeed.export import export
from models.pfeed.model import EncoderConfig, ItemEncoder
from stream.adapters.encoder import BUNDLED_MODEL_DIR, OnnxItemEncoder
from stream.domain.item_tokens import ItemTokenizer

VARIANTS = (("simo", 64), ("siso", 64), ("simo", 32), ("simo", 128), ("simo", 256))


def _tokens(tokenizer: ItemTokenizer) -> np.ndarray:
    from stream.datasets.completejourney import load_completejourney

    catalog = load_completejourney(deal_updates=False).catalog
    rng = np.random.default_rng(0)
    picks = rng.choice(len(catalog), size=4096, replace=False)
    return tokenizer.encode_many([catalog[i] for i in picks.tolist()])


CARD = Path(__file__).resolve().parents[1] / "card"


def main(out: Path = CARD, rounds: int = 9) -> None:
    vocab = BUNDLED_MODEL_DIR / "vocab.json"
    tokenizer = ItemTokenizer.from_dict(json.loads(vocab.read_text()))
    tokens = _tokens(tokenizer)
    torch.manual_seed(0)
    timings: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        encoders = {}
        for kind, dim in VARIANTS:
            cfg = EncoderConfig(vocab_size=tokenizer.vocab_size, out_dim=dim, kind=kind)
            folder = Path(tmp) / f"{kind}-{dim}"
            export(ItemEncoder(cfg), vocab, tokens, folder, {})
            encoders[f"{kind.upper()}-{dim}"] = OnnxItemEncoder(folder, threads=1)
        for name, enc in encoders.items():
            enc.run(tokens[:1024])  # warm-up
            timings[name] = []
        for _ in range(rounds):
            for name, enc in encoders.items():
                started = time.perf_counter()
                for start in range(0, len(tokens), 1024):
                    enc.run(tokens[start : start + 1024])
                timings[name].append((time.perf_counter() - started) / len(tokens) * 1e6)
    result = {name: round(float(np.median(t)), 1) for name, t in timings.items()}
    (out / "cost.json").write_text(json.dumps({"us_per_item_median": result}, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
