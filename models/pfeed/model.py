"""The Pfeed item encoder (PyTorch): a small transformer over an item's content tokens.

**SIMO** (single input, multiple outputs): one encoder; three learned special tokens are
prepended to the content tokens and their final states, each through its own linear head, are
the item's view-query, buy-query and target embeddings (L2-normalised). One forward pass per item.
**SISO**: three independent single-output encoders, one per embedding: the baseline Pfeed
compares against, three forward passes per item.

Attention is written with plain matmul/softmax (no fused ``nn.TransformerEncoder`` fast path),
so the ONNX export is a straightforward graph and onnxruntime matches torch to ~1e-6.
No positional embeddings: an item's tokens are a set (the id bucket, path levels, attributes).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

ROLES = ("view", "buy", "target")


@dataclass(frozen=True)
class EncoderConfig:
    vocab_size: int
    d_model: int = 64
    heads: int = 4
    layers: int = 2
    ff: int = 128
    out_dim: int = 64
    kind: str = "simo"  # "simo" | "siso"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class _Block(nn.Module):
    """Pre-norm self-attention + feed-forward block with an additive key-padding mask."""

    def __init__(self, d_model: int, heads: int, ff: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, ff), nn.GELU(), nn.Linear(ff, d_model))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        h = self.heads
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)
        q = q.reshape(b, n, h, d // h).transpose(1, 2)
        k = k.reshape(b, n, h, d // h).transpose(1, 2)
        v = v.reshape(b, n, h, d // h).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) * (d // h) ** -0.5 + mask[:, None, None, :]
        att = torch.softmax(scores, dim=-1) @ v
        x = x + self.proj(att.transpose(1, 2).reshape(b, n, d))
        return x + self.ff(self.norm2(x))


class _Tower(nn.Module):
    """Token embeddings + ``n_out`` special tokens → ``n_out`` normalised embeddings."""

    def __init__(self, cfg: EncoderConfig, n_out: int) -> None:
        super().__init__()
        self.n_out = n_out
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model, padding_idx=0)
        self.special = nn.Parameter(torch.randn(n_out, cfg.d_model) * 0.02)
        self.blocks = nn.ModuleList(
            _Block(cfg.d_model, cfg.heads, cfg.ff) for _ in range(cfg.layers)
        )
        self.norm = nn.LayerNorm(cfg.d_model, bias=False)
        self.heads = nn.ModuleList(
            nn.Linear(cfg.d_model, cfg.out_dim, bias=False) for _ in range(n_out)
        )

    def forward(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        b = tokens.shape[0]
        x = torch.cat([self.special.expand(b, -1, -1), self.embed(tokens)], dim=1)
        pad = torch.cat(
            [torch.zeros(b, self.n_out, dtype=torch.bool, device=tokens.device), tokens == 0],
            dim=1,
        )
        mask = pad.to(x.dtype) * -1e9
        for block in self.blocks:
            x = block(x, mask)
        # Each special state plus the mean of the content states: the direct content path keeps
        # items apart from the first step (special tokens alone start out nearly identical for
        # every item, and in-batch contrastive training then collapses all embeddings).
        keep = (~pad[:, self.n_out :]).to(x.dtype)[:, :, None]
        pooled = (x[:, self.n_out :] * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1.0)
        x = self.norm(x[:, : self.n_out] + pooled[:, None, :])
        return [nn.functional.normalize(head(x[:, i]), dim=-1) for i, head in enumerate(self.heads)]


class ItemEncoder(nn.Module):
    """tokens (B, L) int64 → (view_query, buy_query, target), each (B, out_dim), unit norm."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.kind == "simo":
            self.towers = nn.ModuleList([_Tower(cfg, 3)])
        elif cfg.kind == "siso":
            self.towers = nn.ModuleList(_Tower(cfg, 1) for _ in ROLES)
        else:
            raise ValueError(f"unknown encoder kind {cfg.kind!r}")

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.cfg.kind == "simo":
            view, buy, target = self.towers[0](tokens)
        else:
            view, buy, target = (tower(tokens)[0] for tower in self.towers)
        return view, buy, target

    def role(self, tokens: torch.Tensor, role: str) -> torch.Tensor:
        """One role's embedding; a SISO model runs only that role's tower (training cost)."""
        i = ROLES.index(role)
        if self.cfg.kind == "simo":
            return self.towers[0](tokens)[i]
        return self.towers[i](tokens)[0]
