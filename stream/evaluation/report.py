"""Render an evaluation report: the JSON as produced, a markdown summary and two PNG plots.

The evaluator owns the numbers; this module only presents them, so every section tolerates
missing methods, segments, metrics or sections (a partial run still yields a readable report).
Plots use matplotlib's object API on an Agg canvas, never pyplot, so no global backend state
is touched and rendering works headless.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from stream.evaluation.metrics import COLD_MAX, WARM_MAX
from stream.evaluation.new_items import markdown as new_items_markdown

SEGMENT_ORDER: tuple[str, ...] = ("cold", "warm", "heavy", "all")
#: Where real-time (interval 0) sits on the log-scaled refresh axis.
REALTIME_X_S = 1.0
DPI = 120
#: Variant suffixes that mark one model family's refresh settings (engine_batch_2min -> engine).
_VARIANT = re.compile(r"_(batch(_\w+)?|realtime|real_time)$")


def _family(method: str) -> str:
    """Refresh-curve line a method belongs to, so per-variant points join into one curve."""
    return _VARIANT.sub("", method) or method


def _metric_keys(k: int) -> list[str]:
    """Metric columns in display order; "n" is a count, not a score."""
    return [f"recall@{k}", f"ndcg@{k}", f"mrr@{k}", f"hit_rate@{k}", "coverage", "novelty"]


def _label(key: str) -> str:
    """Human column header for a metric key (recall@10 -> Recall@10)."""
    names = {"recall": "Recall", "ndcg": "NDCG", "mrr": "MRR", "hit_rate": "HitRate"}
    base, sep, k = key.partition("@")
    return f"{names.get(base, base.capitalize())}{sep}{k}"


def _num(value: Any) -> float | None:
    """A finite float, or None for missing/NaN/non-numeric values (drawn as gaps, shown as —)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _fmt(key: str, value: Any) -> str:
    v = _num(value)
    if v is None:
        return "—"
    if key == "n":
        return f"{int(v):,}"
    return f"{v:.2f}" if key == "novelty" else f"{v:.4f}"


def human_interval(seconds: float) -> str:
    """Short label for a refresh interval: 0 -> real-time, 120 -> 2 min, 86400 -> 24 h."""
    if seconds <= 0:
        return "real-time"
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} s"


def _methods(report: Mapping[str, Any]) -> dict[str, Mapping[str, Mapping[str, Any]]]:
    methods = report.get("methods") or {}
    return {m: segs for m, segs in methods.items() if isinstance(segs, Mapping)}


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _overall_table(methods: Mapping[str, Mapping[str, Any]], k: int) -> list[str]:
    """Methods x metrics on segment "all", best (highest) value per column in bold."""
    keys = _metric_keys(k)
    alls = {m: segs.get("all") or {} for m, segs in methods.items()}
    best: dict[str, float] = {}
    for key in keys:
        values = [v for segs in alls.values() if (v := _num(segs.get(key))) is not None]
        if values:
            best[key] = max(values)
    rows = []
    for method, segs in alls.items():
        cells = [f"`{method}`"]
        for key in keys:
            text = _fmt(key, segs.get(key))
            v = _num(segs.get(key))
            cells.append(f"**{text}**" if v is not None and v == best.get(key) else text)
        cells.append(_fmt("n", segs.get("n")))
        rows.append(cells)
    return _table(["Method", *(_label(key) for key in keys), "n"], rows)


def _segment_table(methods: Mapping[str, Mapping[str, Any]], k: int) -> list[str]:
    """Recall@k and NDCG@k per segment, one row per method; segment sizes in a line above."""
    header = ["Method"]
    for seg in SEGMENT_ORDER:
        header += [f"{seg} {_label(f'recall@{k}')}", f"{seg} {_label(f'ndcg@{k}')}"]
    rows = []
    for method, segs in methods.items():
        row = [f"`{method}`"]
        for seg in SEGMENT_ORDER:
            cell = segs.get(seg) or {}
            row += [_fmt("recall", cell.get(f"recall@{k}")), _fmt("ndcg", cell.get(f"ndcg@{k}"))]
        rows.append(row)
    sizes = []
    for seg in SEGMENT_ORDER:
        ns = [n for segs in methods.values() if (n := _num((segs.get(seg) or {}).get("n")))]
        sizes.append(f"{seg} n={int(max(ns)):,}" if ns else f"{seg} n=0")
    intro = (
        f"Segments by the user's events before the target: cold < {COLD_MAX}, "
        f"warm {COLD_MAX}–{WARM_MAX - 1}, heavy ≥ {WARM_MAX}. Sizes: " + ", ".join(sizes) + "."
    )
    return [intro, "", *_table(header, rows)]


def _data_paragraph(data: Mapping[str, Any]) -> str:
    known = ("users", "items", "events", "targets", "evaluated_targets")
    parts = [f"{_fmt('n', data[key])} {key.replace('_', ' ')}" for key in known if key in data]
    text = ("The data has " + ", ".join(parts) + ".") if parts else "No data summary recorded."
    if "test_start" in data:
        text += f" The test period starts at {data['test_start']}."
    extra = [f"{key}: {value}" for key, value in data.items() if key not in (*known, "test_start")]
    if extra:
        text += " Other facts: " + "; ".join(extra) + "."
    return text


def _freshness_paragraph(fresh: Mapping[str, Any]) -> str:
    if not fresh:
        return "No freshness statistics recorded."
    parts = []
    gap = _num(fresh.get("median_gap_s"))
    if gap is not None:
        parts.append(
            f"The median gap between a user's previous event and the purchase being predicted "
            f"is {gap:,.0f} s ({gap / 3600:.2f} h)."
        )
    shares = fresh.get("share_prev_event_since_refresh") or {}
    if isinstance(shares, Mapping) and shares:
        items = []
        for interval, share in sorted(shares.items(), key=lambda kv: float(kv[0])):
            v = _num(share)
            shown = "—" if v is None else f"{v:.1%}"
            items.append(f"{shown} with a refresh every {human_interval(float(interval))}")
        parts.append(
            "Share of targets whose user's previous event happened after the last batch "
            "refresh: " + ", ".join(items) + "."
        )
    if fresh.get("explanation"):
        parts.append(str(fresh["explanation"]))
    return " ".join(parts)


def _learned_section(report: Mapping[str, Any]) -> list[str]:
    """What the engine learned from this stream and on which time slice (never the scored one)."""
    learned = report.get("learned") or {}
    if not learned:
        return []
    lines = ["## What the engine learned", ""]
    lines.append(f"Ranking profile: `{report.get('ranking_profile', '?')}`. ")
    if "outcome" in learned:
        lines[-1] += (
            f"Signal weights fitted on the lists logged between {learned.get('fit_slice', '?')} "
            f"({learned.get('lists_fit', 0)} purchases), validated on "
            f"{learned.get('validation_slice', '?')} ({learned.get('lists_validation', 0)}), "
            f"both inside the warm-up: {learned['outcome']}."
        )
    else:
        lines[-1] += str(learned.get("ranking", ""))
    weights = (learned.get("profile") or {}).get("weights") or {}
    if weights:
        lines += ["", *_table(["weight", "value"], [[k, f"{v:g}"] for k, v in weights.items()])]
    recall = learned.get("validation_recall")
    if recall:
        lines += [
            "",
            f"Validation Recall@10 (re-ranked logged candidates): fitted "
            f"{recall['fitted']:.4f}, hand weights {recall['hand']:.4f}.",
        ]
    placement = learned.get("seen_placement")
    if placement:
        scores = ", ".join(f"{p} {r:.4f}" for p, r in placement["validation_recall"].items())
        lines += [
            "",
            f"Items the user viewed and did not buy: `{placement['chosen']}` (validation "
            f"Recall@10 by placement: {scores}; `after` keeps at most "
            f"{placement.get('tail', 5)} of them at the end of a {placement.get('size', 10)}-item "
            "list, behind the unseen ones; `mixed` ranks them by score).",
        ]
    lines += _eligibility_lines(learned.get("eligibility"))
    blend = learned.get("pfeed_validation_recall")
    if blend:
        tried = ", ".join(f"{w} → {r:.4f}" for w, r in blend.items())
        lines += [
            "",
            f"Pfeed lookup weight (against co-occurrence 1), fitted the same way: "
            f"{learned['pfeed_lookup_weight']:g} (validation Recall@10 per weight tried: {tried}).",
        ]
    for key, when in (
        ("repeat_propensities_at_fit", "at the fit"),
        ("repeat_propensities_at_end", "at the end of the stream"),
    ):
        rates = learned.get(key)
        if rates:
            lines += [
                "",
                f"Learned shop-wide propensities {when}: re-buy "
                f"{rates['rebuy_rate']:.3f} over {rates['rebuy_trials']:.0f} order lines, "
                f"view-return {rates['view_return_rate']:.3f} over "
                f"{rates['view_return_trials']:.0f} first views.",
            ]
    return [*lines, ""]


def _eligibility_lines(eligibility: Mapping[str, Any] | None) -> list[str]:
    """Which learned-rate bans the warm-up fit kept (``evaluation.fit_eligibility``)."""
    if not eligibility:
        return []
    lifted = eligibility.get("lifted") or []
    tried = ", ".join(f"{k} {v:.4f}" for k, v in eligibility["validation_recall"].items())
    what = {"filter_seen": "viewed", "filter_purchased": "bought"}
    verdict = (
        "lifted for " + " and ".join(f"{what.get(b, b)} items" for b in lifted)
        if lifted
        else "kept"
    )
    return [
        "",
        f"Bans of items the user viewed / bought that customers come back to less than "
        f"{eligibility.get('min_return_rate', 0.05):g} of the time: {verdict} "
        f"(validation Recall@10, weights refitted for each choice: {tried}).",
    ]


def render_markdown(report: Mapping[str, Any], plot_names: Sequence[str] = ()) -> str:
    """Markdown summary of a report; ``plot_names`` are embedded as relative image links."""
    k = int(report.get("k", 10))
    methods = _methods(report)
    title = report.get("title") or f"Evaluation: {report.get('dataset', 'unknown dataset')}"
    lines = [f"# {title}", ""]
    meta = [f"{key}: {report[key]}" for key in ("dataset", "seed", "k", "created") if key in report]
    if meta:
        lines += [" · ".join(meta), ""]
    lines += ["Reproduce with:", "", "```bash", str(report.get("command", "")), "```", ""]
    lines += ["## Data", "", _data_paragraph(report.get("data") or {}), ""]
    lines += ["## Freshness", "", _freshness_paragraph(report.get("freshness") or {}), ""]
    lines += _learned_section(report)
    lines += [f"## Overall (top-{k}, all users)", ""]
    lines += [*_overall_table(methods, k), ""] if methods else ["No methods evaluated.", ""]
    if methods:
        lines += ["## By user segment", "", *_segment_table(methods, k), ""]
    lines += new_items_markdown(report)
    notes = report.get("notes") or []
    if notes:
        lines += ["## Notes", "", *(f"- {note}" for note in notes), ""]
    live = report.get("live")
    if live:
        body = orjson.dumps(live, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
        lines += ["## Live run", "", "```json", body.decode(), "```", ""]
    if plot_names:
        lines += ["## Plots", ""]
        lines += [f"![{Path(name).stem}]({name})" for name in plot_names]
        lines.append("")
    return "\n".join(lines)


def _save(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=DPI)


def plot_refresh(report: Mapping[str, Any], path: Path) -> None:
    """Recall@k and NDCG@k vs refresh interval for the engine, baselines as dashed lines."""
    k = int(report.get("k", 10))
    dataset = report.get("dataset", "")
    curve = [p for p in report.get("refresh_curve") or [] if isinstance(p, Mapping)]
    names = {str(p.get("method", "engine")) for p in curve}
    curve_methods = list(dict.fromkeys(_family(str(p.get("method", "engine"))) for p in curve))
    baselines = {
        m: segs.get("all") or {}
        for m, segs in _methods(report).items()
        if not m.startswith("engine") and m not in names and _family(m) not in curve_methods
    }
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    axes = fig.subplots(1, 2)
    ticks: set[float] = set()
    for ax, key in zip(axes, (f"recall@{k}", f"ndcg@{k}"), strict=True):
        for method in curve_methods:
            pts = sorted(
                (max(float(p.get("interval_s", 0.0)), 0.0), v)
                for p in curve
                if _family(str(p.get("method", "engine"))) == method
                and (v := _num(p.get(key))) is not None
            )
            if not pts:
                continue
            xs = [x if x > 0 else REALTIME_X_S for x, _ in pts]
            ticks.update(xs)
            ax.plot(xs, [v for _, v in pts], marker="o", linewidth=2, label=method)
        for i, (method, cell) in enumerate(baselines.items()):
            v = _num(cell.get(key))
            if v is not None:
                ax.axhline(
                    v,
                    linestyle="--",
                    linewidth=1.2,
                    color=f"C{i + len(curve_methods)}",
                    label=method,
                )
        ax.set_xscale("log")
        if ticks:
            tick_list = sorted(ticks)
            ax.set_xticks(tick_list)
            ax.set_xticklabels([human_interval(0 if t == REALTIME_X_S else t) for t in tick_list])
            ax.minorticks_off()
            ax.set_xlim(min(tick_list) / 3, max(tick_list) * 3)
        else:
            ax.text(
                0.5, 0.5, "no refresh-curve data", ha="center", va="center", transform=ax.transAxes
            )
        ax.set_xlabel("model refresh interval")
        ax.set_ylabel(_label(key))
        ax.set_title(f"{_label(key)} vs freshness")
        ax.grid(True, alpha=0.3)
        ax.set_ylim(bottom=0)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside right center", fontsize=9)
    fig.suptitle(f"{dataset}: effect of refresh interval (top-{k})".strip(": "))
    _save(fig, path)


def plot_segments(report: Mapping[str, Any], path: Path) -> None:
    """Grouped bars of Recall@k per user segment, one bar per method."""
    k = int(report.get("k", 10))
    key = f"recall@{k}"
    methods = _methods(report)
    segments = [s for s in SEGMENT_ORDER if any(s in segs for segs in methods.values())]
    fig = Figure(figsize=(11, 4.8), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / max(len(methods), 1)
    for i, (method, segs) in enumerate(methods.items()):
        xs, ys = [], []
        for j, seg in enumerate(segments):
            v = _num((segs.get(seg) or {}).get(key))
            if v is not None:
                xs.append(j - 0.4 + width * (i + 0.5))
                ys.append(v)
        ax.bar(xs, ys, width=width * 0.95, label=method, color=f"C{i}")
    labels = []
    for seg in segments:
        ns = [n for segs in methods.values() if (n := _num((segs.get(seg) or {}).get("n")))]
        labels.append(f"{seg}\n(n={int(max(ns)):,})" if ns else seg)
    ax.set_xticks(range(len(segments)))
    ax.set_xticklabels(labels)
    if not segments:
        ax.text(0.5, 0.5, "no segment data", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel(_label(key))
    ax.set_xlabel("user segment (by prior events)")
    ax.grid(True, axis="y", alpha=0.3)
    if methods:
        fig.legend(loc="outside right center", fontsize=9)
    dataset = report.get("dataset", "")
    ax.set_title(f"{dataset}: {_label(key)} by user segment".strip(": "))
    _save(fig, path)


def write_report(report: dict[str, Any], out_json: Path) -> list[Path]:
    """Write ``out_json``, ``<stem>.md`` and ``<stem>-refresh.png``/``-segments.png`` beside it.

    Returns the paths written: JSON, markdown, then the plots.
    """
    out_json = Path(out_json)
    out_json.parent.mkdir(parents=True, exist_ok=True)
    stem = out_json.stem
    refresh_png = out_json.with_name(f"{stem}-refresh.png")
    segments_png = out_json.with_name(f"{stem}-segments.png")
    md = out_json.with_name(f"{stem}.md")
    option = orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY
    out_json.write_bytes(orjson.dumps(report, option=option) + b"\n")
    plot_refresh(report, refresh_png)
    plot_segments(report, segments_png)
    md.write_text(render_markdown(report, [refresh_png.name, segments_png.name]), encoding="utf-8")
    return [out_json, md, refresh_png, segments_png]
