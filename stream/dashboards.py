"""Grafana dashboards (deploy/grafana/dashboards/*.json) read as data, and drawn without Grafana.

``recstream dashboards render --prometheus URL`` asks a live Prometheus for every panel's targets
over a time range (``/api/v1/query_range``, the same PromQL Grafana sends) and draws each
dashboard's panels into one PNG, laid out on Grafana's 24-column grid. No Grafana server can run
on the development machines, so this is how a person sees what the dashboards show.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stream.local_prometheus import ROOT, PrometheusAPI

DASHBOARD_DIR = ROOT / "deploy" / "grafana" / "dashboards"
#: Grafana units → (scale, suffix) for axis labels and stat values.
_UNITS: dict[str, tuple[float, str]] = {
    "s": (1000.0, "ms"),
    "ops": (1.0, "/s"),
    "percentunit": (100.0, "%"),
    "bytes": (1 / 1024 / 1024, "MiB"),
    "short": (1.0, ""),
}


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    kind: str  # "timeseries" or "stat"
    unit: str
    decimals: int  # for stat values
    grid: tuple[int, int, int, int]  # x, y, w, h on Grafana's 24-column grid
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class Dashboard:
    name: str  # file stem
    title: str
    panels: tuple[Panel, ...]


def load_dashboards(directory: Path = DASHBOARD_DIR) -> list[Dashboard]:
    """Every dashboard JSON in ``directory``, sorted by file name."""
    return [_parse(path) for path in sorted(directory.glob("*.json"))]


def _parse(path: Path) -> Dashboard:
    raw = json.loads(path.read_text())
    panels = []
    for p in raw["panels"]:
        grid = p["gridPos"]
        defaults = p.get("fieldConfig", {}).get("defaults", {})
        targets = tuple(Target(t["expr"], t.get("legendFormat", "")) for t in p.get("targets", ()))
        panels.append(
            Panel(
                p["title"],
                p.get("description", ""),
                p["type"],
                defaults.get("unit", "short"),
                int(defaults.get("decimals", 2)),
                (grid["x"], grid["y"], grid["w"], grid["h"]),
                targets,
            )
        )
    return Dashboard(path.stem, raw["title"], tuple(panels))


def all_panel_targets(directory: Path = DASHBOARD_DIR) -> Iterator[tuple[str, Panel, Target]]:
    for dashboard in load_dashboards(directory):
        for panel in dashboard.panels:
            for target in panel.targets:
                yield dashboard.name, panel, target


def legend(template: str, labels: dict[str, str]) -> str:
    """Grafana's ``{{label}}`` legend format; "__auto" or empty → the label set."""
    if template in ("", "__auto"):
        return ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "__name__") or "value"
    text = template
    for key, value in labels.items():
        text = text.replace("{{" + key + "}}", value)
    return text


Series = list[tuple[str, list[float], list[float]]]  # (legend, times, values)


def fetch_panel(api: PrometheusAPI, panel: Panel, start: float, end: float, step: float) -> Series:
    series: Series = []
    for target in panel.targets:
        for result in api.query_range(target.expr, start, end, step):
            times = [float(t) for t, _ in result["values"]]
            values = [float(v) for _, v in result["values"]]
            series.append((legend(target.legend, result["metric"]), times, values))
    return series


def _draw_panel(ax: Any, panel: Panel, series: Series, end: float) -> None:
    scale, suffix = _UNITS.get(panel.unit, (1.0, ""))
    ax.set_title(panel.title, fontsize=9, loc="left")
    ax.tick_params(labelsize=7)
    finite = [(name, t, [v * scale for v in vals]) for name, t, vals in series]
    if not finite:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    if panel.kind == "stat":
        lines = []
        for name, _, vals in finite:
            last = next((v for v in reversed(vals) if not math.isnan(v)), math.nan)
            lines.append(f"{name}: {last:,.{panel.decimals}f}{suffix}")
        ax.text(0.5, 0.5, "\n".join(lines), ha="center", va="center", fontsize=12,
                transform=ax.transAxes)  # fmt: skip
        ax.set_xticks([])
        ax.set_yticks([])
        return
    for n, (name, times, vals) in enumerate(finite[:12]):
        style = ("-", "--", ":", "-.")[n // 4 % 4]  # overlapping lines stay distinguishable
        ax.plot([t - end for t in times], vals, style, label=name, linewidth=1.3)
    ax.set_xlabel("seconds before render", fontsize=7)
    if suffix:
        ax.set_ylabel(suffix, fontsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="upper left")


#: Inches per Grafana grid row, and padding inside a panel's cell for its title and ticks.
_ROW_IN, _PAD_TOP_IN, _PAD_BOTTOM_IN, _PAD_LEFT, _PAD_RIGHT = 0.42, 0.32, 0.42, 0.035, 0.008


def render_dashboard(
    api: PrometheusAPI, dashboard: Dashboard, out: Path, start: float, end: float, step: float
) -> Path:
    """One PNG with every panel of ``dashboard`` where Grafana would place it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = max(p.grid[1] + p.grid[3] for p in dashboard.panels)
    height = rows * _ROW_IN + 0.6  # + the dashboard title
    fig = plt.figure(figsize=(18, height))
    row = _ROW_IN / height
    for panel in dashboard.panels:
        x, y, w, h = panel.grid
        bottom = 1 - (0.6 / height) - (y + h) * row + _PAD_BOTTOM_IN / height
        top = 1 - (0.6 / height) - y * row - _PAD_TOP_IN / height
        left, right = x / 24 + _PAD_LEFT, (x + w) / 24 - _PAD_RIGHT
        ax = fig.add_axes((left, bottom, right - left, top - bottom))
        _draw_panel(ax, panel, fetch_panel(api, panel, start, end, step), end)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(end))
    fig.suptitle(f"{dashboard.title}  —  last {int(end - start)} s, {stamp}", fontsize=13,
                 y=1 - 0.15 / height)  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{dashboard.name}.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def render_all(
    prometheus_url: str, out: Path, minutes: float = 15.0, directory: Path = DASHBOARD_DIR
) -> list[Path]:
    """Render every dashboard over the last ``minutes``; prints one line per dashboard."""
    api = PrometheusAPI(prometheus_url)
    end = time.time()
    start = end - minutes * 60
    step = max(1.0, (end - start) / 300)
    paths = []
    for dashboard in load_dashboards(directory):
        path = render_dashboard(api, dashboard, out, start, end, step)
        print(f"rendered {dashboard.title} ({len(dashboard.panels)} panels) -> {path}", flush=True)
        paths.append(path)
    return paths


def main_render(prometheus_url: str, out: str, minutes: float) -> int:
    paths = render_all(prometheus_url, Path(out), minutes)
    if not paths:
        print(f"no dashboards found in {DASHBOARD_DIR}", file=sys.stderr)
        return 1
    return 0
