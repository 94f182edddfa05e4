"""Pfeed's offline protocol: SIMO vs SISO, embedding sizes, relation complexity, co-occurrence.

Every compared encoder is trained with the same data, seed and step budget; each is scored on
the same held-out tasks (``offline.py``) and exported to ONNX to time inference through
onnxruntime (1 thread, batches of 1024 items; the machine is shared, so timings are noisy).
SIMO-64 is also the shipped model: its checkpoint is saved and exported to ``models/encoder``.
Results: ``models/card/protocol.json``, PNG plots there, and the tables between the markers
of ``models/README.md``.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from models.pfeed import offline
from models.pfeed.data import TrainingData, load_training_data
from models.pfeed.export import export
from models.pfeed.model import EncoderConfig
from models.pfeed.report import write_card
from models.pfeed.train import TrainConfig, embed_all, save, train

VARIANTS = (("simo", 64), ("siso", 64), ("simo", 32), ("simo", 128), ("simo", 256))


def _inference_cost(model_dir: Path, tokens: np.ndarray, repeats: int = 7) -> float:
    """Best-of-``repeats`` µs per item to embed 4,096 items through onnxruntime in batches of
    1,024: on a machine shared with other jobs the minimum is the least disturbed figure."""
    from stream.adapters.encoder import OnnxItemEncoder

    encoder = OnnxItemEncoder(model_dir, threads=1)
    batch = tokens[:4096]
    encoder.run(batch[:1024])  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        for start in range(0, len(batch), 1024):
            encoder.run(batch[start : start + 1024])
        times.append(time.perf_counter() - started)
    return float(np.min(times)) / len(batch) * 1e6


def _evaluate(tasks: list[offline.Task], scorer_for: Any) -> dict[str, Any]:
    return {
        task.name: offline.summarise(task, offline.hits(task, scorer_for(task))) for task in tasks
    }


def _tasks(data: TrainingData, quick: bool) -> list[offline.Task]:
    sample, distractors = (2000, 2000) if quick else (20_000, 10_000)
    return [
        offline.make_task(te, tr, data.items_of(data.source_of(te)), sample, distractors)
        for tr, te in zip(data.train, data.test, strict=True)
    ]


def run_extra(out: Path, label: str, log_q_weight: float) -> int:
    """One more SIMO-64 variant (a different logQ share) added to an existing protocol.json."""
    card = out / "card"
    report = json.loads((card / "protocol.json").read_text())
    data = load_training_data()
    tasks = _tasks(data, quick=False)
    enc = EncoderConfig(vocab_size=data.tokenizer.vocab_size)
    cfg = TrainConfig(steps=int(report["steps"]), log_q_weight=log_q_weight)
    model, summary = train(data, enc, cfg, label=label)
    emb = embed_all(model, data.tokens)
    metrics = _evaluate(tasks, lambda t: offline.embedding_scorer(emb, t.role))
    report["results"][label] = {"summary": summary, "metrics": metrics}
    print(f"{label}: {json.dumps(metrics, ensure_ascii=False)}")
    (card / "protocol.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    write_card(report, card, out / "README.md")
    return 0


def run(out: Path, checkpoint: Path, steps: int = 500, quick: bool = False) -> int:
    data: TrainingData = load_training_data(max_households=200 if quick else None)
    n_items = len(data.tokens)
    tasks = _tasks(data, quick)
    print("scoring the co-occurrence baseline …", flush=True)
    by_name = {tr.name: tr for tr in data.train}
    results: dict[str, Any] = {
        "cooccurrence": {
            "metrics": _evaluate(
                tasks, lambda t: offline.cooccurrence_scorer(by_name[t.name], n_items)
            )
        }
    }
    rng = np.random.default_rng(0)
    cost_tokens = data.tokens[rng.choice(n_items, size=min(4096, n_items), replace=False)]
    card = out / "card"
    card.mkdir(parents=True, exist_ok=True)
    for kind, dim in VARIANTS:
        label = f"{kind.upper()}-{dim}"
        enc = EncoderConfig(vocab_size=data.tokenizer.vocab_size, out_dim=dim, kind=kind)
        model, summary = train(data, enc, TrainConfig(steps=steps), label=label)
        emb = embed_all(model, data.tokens)
        metrics = _evaluate(tasks, lambda t, e=emb: offline.embedding_scorer(e, t.role))
        with tempfile.TemporaryDirectory() as tmp:
            save(model, data, summary, Path(tmp))
            export(model, Path(tmp) / "vocab.json", data.tokens, Path(tmp) / "onnx", summary)
            cost = _inference_cost(Path(tmp) / "onnx", cost_tokens)
            if (kind, dim) == ("simo", 64) and not quick:
                save(model, data, summary, checkpoint)
                export(model, Path(tmp) / "vocab.json", data.tokens, out / "encoder", summary)
        results[label] = {"summary": summary, "metrics": metrics, "us_per_item": cost}
        print(f"{label}: {json.dumps(metrics, ensure_ascii=False)}  {cost:.1f} µs/item")
    report = {
        "steps": steps,
        "quick": quick,
        "pairs": {
            p.name: {"train": len(p), "test": len(q)}
            for p, q in zip(data.train, data.test, strict=True)
        },
        "tasks": {
            t.name: {"pairs": int(t.query.size), "pool": int(t.pool.size)} for t in tasks
        },
        "vocabulary": len(data.tokenizer.tokens),
        "id_buckets": data.tokenizer.id_buckets,
        "items": n_items,
        "results": results,
    }
    (card / "protocol.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    write_card(report, card, out / "README.md")
    return 0
