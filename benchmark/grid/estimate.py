"""How long jobs will train, from the stored runs of the same kind: what `--dry-run` and `status` print.

A kind is (method, dataset, budget, protocol). Each job counts the median training seconds of the
stored runs of its kind on the same kind of device (the fastest run as a lower bound: runs stored
while the machine was busy take longer). A job that will start from a stage another job of the
same grid (or the store) already saved, such as a search draw after the first on its seed
(`Method.shared_stages`), counts only the stages after it.
"""
from __future__ import annotations

from typing import Any

from benchmark.protocol import of_job

Kind = tuple[str, str, str, str]


def kind_of(method: str, dataset: str, budget: str, protocol: Any) -> Kind:
    return method, dataset, budget, getattr(protocol, "label", protocol)


def reused_stages(jobs: list[Any], saved: Any = None) -> list[str | None]:
    """Per job, the shared stage it will start after (None: it trains every stage): a stage of its
    method's `shared_stages` that an earlier job of `jobs` with the same prefix reaches, or that
    `saved(job, stage, ignored)` says is already stored."""
    from benchmark.imports import project_packages

    methods = project_packages()[1].METHODS
    seen: set[tuple[str, str]] = set()
    reused: list[str | None] = []
    for job in jobs:
        shared = getattr(methods.get(job.method), "shared_stages", {}) or {}
        found = None
        for stage, ignored in shared.items():
            key = (stage, job.prefix_id(ignored))
            if key in seen or (saved is not None and saved(job, stage, ignored)):
                found = found or stage
            seen.add(key)
        reused.append(found)
    return reused


def estimate_line(jobs: list[Any], records: list[dict[str, Any]], device: str | None = None, saved: Any = None) -> str:
    """How long `jobs` will train one after another, from `records` (stored results) of the same
    kind on `device` (`cpu` or `cuda`; any when None). A rough guide: hyperparameters and ratios may
    differ. `saved(job, stage, ignored)`: whether a shared stage is already stored."""
    reused = reused_stages(jobs, saved)
    return estimate_kinds([(*kind_of(j.method, j.dataset, j.budget, j.protocol), r) for j, r in zip(jobs, reused)],
                          records, device)


def estimate_kinds(kinds: list[tuple], records: list[dict[str, Any]], device: str | None = None) -> str:
    """`estimate_line` for jobs given by kind, (method, dataset, budget, protocol label), one per job,
    optionally with a fifth element: the shared stage it starts after. A protocol of "?" (not
    recorded) counts the stored runs of every protocol."""
    runs: dict[Kind, list[dict[str, float]]] = {}
    devices: dict[Kind, set[str]] = {}
    for r in records:
        job, env = r["job"], r.get("environment") or {}
        stages = {name: float(t.get("seconds") or 0.0) for name, t in (r.get("timings") or {}).items()}
        ran_on = str(env.get("device", "?")).split(":")[0]
        if sum(stages.values()) > 0 and not r.get("twin_of") and device in (None, ran_on):  # a twin's seconds are its published run's
            kind = kind_of(job["method"], job["dataset"], job["budget"], of_job(job))
            for into in (kind, (*kind[:3], "?")):
                runs.setdefault(into, []).append(stages)
                devices.setdefault(into, set()).add(str(env.get("device_name") or "?"))
    counts: dict[tuple[Kind, str | None], int] = {}
    for entry in kinds:
        key = (tuple(entry[:4]), entry[4] if len(entry) > 4 else None)
        counts[key] = counts.get(key, 0) + 1
    known = {k: n for k, n in counts.items() if k[0] in runs}
    unknown = sorted({k[0] for k in counts if k[0] not in runs})

    def after(stages: dict[str, float], stage: str | None) -> float:
        """Seconds of the stages after `stage` (all of them when None or not among them)."""
        names = list(stages)
        start = names.index(stage) + 1 if stage in names else 0
        return sum(stages[n] for n in names[start:])

    def name(kind: Kind, stage: str | None = None) -> str:
        shown = {"published": "", "?": " [protocol not recorded]"}.get(kind[3], f" [{kind[3]}]")
        return f"{kind[0]}/{kind[1]}{shown}" + ("" if stage is None else f" after its shared {stage} stage")

    seconds = {k: sorted(after(s, k[1]) for s in runs[k[0]]) for k in known}
    median = sum(seconds[k][len(seconds[k]) // 2] * n for k, n in known.items()) / 3600
    fastest = sum(seconds[k][0] * n for k, n in known.items()) / 3600
    parts = [f"{name(*k)} {n} x {seconds[k][len(seconds[k]) // 2] / 60:.0f} min"
             for k, n in sorted(known.items(), key=lambda item: (item[0][0], item[0][1] or ""))]
    used = sorted(set().union(*(devices[k[0]] for k in known))) if known else []
    line = (f"time: about {median:.1f} h of training one job after another, {fastest:.1f} h at the fastest stored "
            f"run of each kind (median of stored runs of the same kind: {', '.join(parts)}; they ran on {', '.join(used)})"
            ) if known else "time: no estimate"
    where = "" if device is None else f" on {device}"
    return line + (f"; no stored run{where} to estimate {', '.join(name(k) for k in unknown)}" if unknown else "")
