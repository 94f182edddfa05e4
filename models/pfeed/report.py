"""Model-card tables (markdown, spliced into models/README.md) and PNG plots of the protocol."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

BEGIN, END = "<!-- protocol:begin -->", "<!-- protocol:end -->"
KINDS = ("1→1", "1→n", "m→1", "m→n")


def _r(metrics: dict[str, Any], relation: str, segment: str, k: int) -> str:
    row = metrics.get(relation, {}).get(segment)
    return f"{row[f'recall@{k}']:.4f}" if row else "–"


def _compared(res: dict[str, Any]) -> list[str]:
    """Baseline, SIMO-64, SISO-64, then any extra variant (not the embedding-size runs)."""
    fixed = [m for m in ("cooccurrence", "SIMO-64", "SISO-64") if m in res]
    sizes = {f"SIMO-{d}" for d in (32, 128, 256)}
    return fixed + [m for m in res if m not in fixed and m not in sizes]


def _tables(report: dict[str, Any]) -> str:
    res = report["results"]
    relations = list(report["tasks"])
    head = " | ".join(f"{r} R@10 | R@50" for r in relations)
    sep = "|".join("---" for _ in range(2 * len(relations) + 3))
    title = "**SIMO vs SISO vs co-occurrence** (Recall@K, all held-out pairs of each relation)"
    lines = [title, ""]
    lines += [f"| method | {head} | µs/item (onnxruntime) | parameters |", f"|{sep}|"]
    for name in _compared(res):
        cells = " | ".join(
            f"{_r(res[name]['metrics'], r, 'all', 10)} | {_r(res[name]['metrics'], r, 'all', 50)}"
            for r in relations
        )
        cost = f"{res[name]['us_per_item']:.1f}" if "us_per_item" in res[name] else "–"
        params = f"{res[name]['summary']['parameters']:,}" if "summary" in res[name] else "–"
        lines.append(f"| {name} | {cells} | {cost} | {params} |")
    lines += ["", "**Embedding size** (SIMO, same training budget)", ""]
    lines += [f"| size | {head} | µs/item | training s |", f"|{sep}|"]
    for dim in (32, 64, 128, 256):
        name = f"SIMO-{dim}"
        if name in res:
            cells = " | ".join(
                f"{_r(res[name]['metrics'], r, 'all', 10)} | "
                f"{_r(res[name]['metrics'], r, 'all', 50)}"
                for r in relations
            )
            lines.append(
                f"| {dim} | {cells} | {res[name]['us_per_item']:.1f} | "
                f"{res[name]['summary']['seconds']} |"
            )
    lines += ["", "**Simple vs complex relations** (Recall@10; pairs per segment in brackets)", ""]
    segs = [*KINDS, "cold target"]
    rule = "|".join("---" for _ in range(len(segs) + 2))
    lines += [f"| relation | method | {' | '.join(segs)} |", f"|{rule}|"]
    for relation in relations:
        for name in _compared(res):
            m = res[name]["metrics"].get(relation, {})
            cells = " | ".join(
                f"{m[s]['recall@10']:.4f} ({m[s]['pairs']:,})" if s in m else "–" for s in segs
            )
            lines.append(f"| {relation} | {name} | {cells} |")
    return "\n".join(lines)


def _plots(report: dict[str, Any], card: Path) -> None:
    res, relations = report["results"], list(report["tasks"])
    methods = _compared(res)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, k in zip(axes, (10, 50), strict=True):
        width = 0.8 / len(methods)
        for i, name in enumerate(methods):
            vals = [res[name]["metrics"][r]["all"][f"recall@{k}"] for r in relations]
            ax.bar([x + i * width for x in range(len(relations))], vals, width, label=name)
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(relations))], relations)
        ax.set_title(f"Recall@{k} among distractors")
        ax.legend()
    fig.tight_layout()
    fig.savefig(card / "recall_by_method.png", dpi=110)
    plt.close(fig)
    dims = [d for d in (32, 64, 128, 256) if f"SIMO-{d}" in res]
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in relations:
        ax.plot(dims, [res[f"SIMO-{d}"]["metrics"][r]["all"]["recall@10"] for d in dims], "o-",
                label=f"{r} R@10")
    ax.set_xscale("log", base=2)
    ax.set_xticks(dims, [str(d) for d in dims])
    ax.set_xlabel("embedding size")
    ax.set_title("SIMO: Recall@10 by embedding size")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(card / "recall_by_size.png", dpi=110)
    plt.close(fig)
    fig, axes = plt.subplots(1, len(relations), figsize=(4.2 * len(relations), 3.8))
    segs = [*KINDS, "cold target"]
    for ax, relation in zip(axes, relations, strict=True):
        width = 0.8 / len(methods)
        for i, name in enumerate(methods):
            m = res[name]["metrics"][relation]
            vals = [m[s]["recall@10"] if s in m else 0.0 for s in segs]
            ax.bar([x + i * width for x in range(len(segs))], vals, width, label=name)
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(segs))], segs, fontsize=8)
        ax.set_title(f"{relation}: Recall@10 by relation kind", fontsize=9)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(card / "recall_by_relation_kind.png", dpi=110)
    plt.close(fig)
    cost_file = card / "cost.json"
    if cost_file.is_file():  # interleaved timings (models/pfeed/cost.py) are the less noisy ones
        costs = json.loads(cost_file.read_text())["us_per_item_median"]
        title = "Inference cost (interleaved rounds, median)"
    else:
        costs = {m: res[m]["us_per_item"] for m in res if "us_per_item" in res[m]}
        title = "Inference cost (timed after each training)"
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(list(costs), list(costs.values()), color="tab:gray")
    ax.set_ylabel("µs per item (onnxruntime, 1 thread)")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(card / "inference_cost.png", dpi=110)
    plt.close(fig)


def write_card(report: dict[str, Any], card: Path, readme: Path) -> None:
    """PNG plots into ``card`` and the tables into ``readme`` between the protocol markers."""
    _plots(report, card)
    tables = _tables(report)
    (card / "tables.md").write_text(tables + "\n")
    text = readme.read_text() if readme.is_file() else ""
    if BEGIN in text and END in text:
        before, rest = text.split(BEGIN, 1)
        after = rest.split(END, 1)[1]
        readme.write_text(f"{before}{BEGIN}\n{tables}\n{END}{after}")
