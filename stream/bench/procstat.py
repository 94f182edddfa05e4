"""CPU time and resident memory of a process from /proc (Linux), without extra dependencies.

Used to show where the cores went during a throughput run (broker, workers, harness) and the
RSS of a process holding many users' state.
"""

from __future__ import annotations

import os

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (all its threads); 0.0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    # after the command name: state is fields[0]; utime, stime are fields 14, 15 of stat(5)
    return (int(fields[11]) + int(fields[12])) / _TICKS


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, over all its cores
    (``/proc/stat``; busy is all but idle and iowait); (0.0, 0.0) if unreadable."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0, 0.0
    total = sum(ticks[:8])  # user nice system idle iowait irq softirq steal (guest is in user)
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    return (total - idle) / _TICKS, total / _TICKS


def machine_steal() -> float:
    """CPU seconds the hypervisor took from this machine since boot, over all its cores
    (``/proc/stat``'s steal); 0.0 if unreadable. A shared VM's figures fall with it: a level
    run while the host took 30 % of the cores is not the same machine as one at 0 %."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    return ticks[7] / _TICKS if len(ticks) > 7 else 0.0


def steal_reading() -> tuple[float, float]:
    """``(machine_steal(), total)``: one reading for ``stolen_share``."""
    return machine_steal(), machine_cpu()[1]


def stolen_share(before: tuple[float, float], after: tuple[float, float]) -> float | None:
    """Share (0-1) of all cores' time the host took between two ``steal_reading()``s; None over
    no time."""
    total = after[1] - before[1]
    return round((after[0] - before[0]) / total, 3) if total > 0 else None


def rss_bytes(pid: int | None = None) -> int:
    """Resident set size of ``pid`` (default: this process) in bytes; 0 if it is gone."""
    try:
        with open(f"/proc/{pid or 'self'}/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        return 0


def machine() -> dict[str, object]:
    """What the figures were measured on."""
    import platform

    info: dict[str, object] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if "model name" in line), "")
        info["cpu_model"] = model
        info["loadavg_at_start"] = list(os.getloadavg())
    except OSError:
        pass
    return info
