"""Contrastive training of the item encoder on mined query→target pairs (in-batch negatives).

Each step draws one batch of pairs from one relation (seeded; relations mixed by ``weights``),
embeds the queries with the relation's query role (view or buy) and the targets with the target
role, and minimises softmax cross-entropy over the batch: every other target in the batch is a
negative, except copies of the positive's own target item (masked, not a false negative).
Single-source batches keep negatives realistic (a film is no negative for a grocery query).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from models.pfeed.data import TrainingData
from models.pfeed.model import EncoderConfig, ItemEncoder


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 500
    batch: int = 512
    lr: float = 3e-3
    warmup: int = 50
    #: initial softmax temperature; learned (CLIP-style log scale) and floored at ``min_tau``.
    #: A low fixed temperature collapsed every embedding onto one point in the first ~20 steps
    #: (random initial logits cost more than uniform ones), from which training never escaped.
    tau: float = 0.2
    min_tau: float = 0.02
    seed: int = 0
    threads: int = 1
    #: share of batches per relation, in the order of TrainingData.train
    weights: tuple[float, ...] = (0.5, 0.2, 0.3)
    log_q: bool = True
    #: share of the logQ correction (1 = full p(target | query); 0 = popularity-free PMI)
    log_q_weight: float = 1.0


def _lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def contrastive_loss(
    q: torch.Tensor,
    t: torch.Tensor,
    t_ids: torch.Tensor,
    scale: torch.Tensor | float,
    log_q: torch.Tensor | None = None,
) -> torch.Tensor:
    """In-batch softmax; ``log_q`` (log sampling frequency of each batch target) corrects the
    popularity bias of in-batch negatives (Yi et al. 2019), so scores estimate p(target | query)
    rather than a popularity-free PMI, which is what "recall among random distractors" rewards."""
    logits = q @ t.T * scale
    if log_q is not None:
        logits = logits - log_q[None, :]
    same = (t_ids[:, None] == t_ids[None, :]) & ~torch.eye(len(t_ids), dtype=torch.bool)
    logits = logits.masked_fill(same, float("-inf"))
    return torch.nn.functional.cross_entropy(logits, torch.arange(len(t_ids)))


def _log_frequency(targets: np.ndarray, n_items: int) -> torch.Tensor:
    counts = np.bincount(targets, minlength=n_items).astype(np.float64)
    return torch.from_numpy(np.log(np.maximum(counts, 1.0) / max(1, targets.size))).float()


def train(
    data: TrainingData, enc: EncoderConfig, cfg: TrainConfig, label: str = "train"
) -> tuple[ItemEncoder, dict[str, object]]:
    """Train one encoder; returns it and a summary (losses, wall time) for the model card."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(cfg.seed)
    model = ItemEncoder(enc)
    log_scale = torch.nn.Parameter(torch.tensor(math.log(1.0 / cfg.tau)))
    groups: list[dict[str, Any]] = [
        {"params": list(model.parameters())},
        {"params": [log_scale], "lr_mult": 10.0, "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=0.01)
    log_freq = [_log_frequency(p.target, len(data.tokens)) for p in data.train]
    tokens = torch.from_numpy(data.tokens)
    weights = np.asarray(cfg.weights, dtype=np.float64)[: len(data.train)]
    sources = rng.choice(len(data.train), size=cfg.steps, p=weights / weights.sum())
    losses: list[float] = []
    started = time.perf_counter()
    bar = tqdm(range(cfg.steps), desc=label, unit="step", mininterval=2.0)
    for step in bar:
        pairs = data.train[int(sources[step])]
        pick = rng.integers(0, len(pairs), size=cfg.batch)
        q_ids = torch.from_numpy(pairs.query[pick])
        t_ids = torch.from_numpy(pairs.target[pick])
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, cfg) * group.get("lr_mult", 1.0)
        q = model.role(tokens[q_ids], pairs.role)
        t = model.role(tokens[t_ids], "target")
        scale = log_scale.exp().clamp(max=1.0 / cfg.min_tau)
        log_q = cfg.log_q_weight * log_freq[int(sources[step])][t_ids] if cfg.log_q else None
        loss = contrastive_loss(q, t, t_ids, scale, log_q)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step % 25 == 0:
            tau = 1.0 / log_scale.exp().item()
            bar.set_postfix(loss=f"{np.mean(losses[-25:]):.3f}", tau=f"{tau:.3f}")
    seconds = time.perf_counter() - started
    model.eval()
    summary: dict[str, object] = {
        "label": label,
        "encoder": enc.to_dict(),
        "train": asdict(cfg),
        "parameters": sum(p.numel() for p in model.parameters()),
        "seconds": round(seconds, 1),
        "loss_first_50": round(float(np.mean(losses[:50])), 4),
        "loss_last_50": round(float(np.mean(losses[-50:])), 4),
        "final_tau": round(1.0 / log_scale.exp().clamp(max=1.0 / cfg.min_tau).item(), 4),
    }
    return model, summary


@torch.no_grad()
def embed_all(model: ItemEncoder, tokens: np.ndarray, batch: int = 4096) -> np.ndarray:
    """(3, items, dim) float32: view-query, buy-query and target embeddings of every item."""
    parts = []
    for start in range(0, len(tokens), batch):
        out = model(torch.from_numpy(tokens[start : start + batch]))
        parts.append(torch.stack(out).numpy())
    return np.concatenate(parts, axis=1)


def save(model: ItemEncoder, data: TrainingData, summary: dict[str, object], out: Path) -> None:
    """Checkpoint + vocabulary + training summary, what ``export`` and the card read."""
    out.mkdir(parents=True, exist_ok=True)
    torch.save({"config": model.cfg.to_dict(), "state": model.state_dict()}, out / "encoder.pt")
    (out / "vocab.json").write_text(json.dumps(data.tokenizer.to_dict()))
    (out / "train.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))


def load(path: Path) -> ItemEncoder:
    blob = torch.load(path, weights_only=True)
    model = ItemEncoder(EncoderConfig(**blob["config"]))
    model.load_state_dict(blob["state"])
    model.eval()
    return model
