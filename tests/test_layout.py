"""The package layout: no import circles inside `benchmark`, and the committed reference results are
still found by the jobs the current code defines (ids unchanged by moving code around)."""
import ast
from pathlib import Path

from benchmark.grid.jobs import expand_grid

ROOT = Path(__file__).resolve().parent.parent


def _import_graph() -> dict[str, set[str]]:
    modules = {}
    for path in (ROOT / "benchmark").rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):  # lazy imports inside functions count too
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("benchmark"):
                graph[name] |= {t for t in (node.module, *(f"{node.module}.{a.name}" for a in node.names))
                                if t in modules and t != "benchmark"}
    return graph


def test_no_module_of_benchmark_imports_itself_back():
    graph = _import_graph()
    assert {"benchmark.training.harness", "benchmark.grid.runner", "benchmark.reports.report", "benchmark.perf"} <= set(graph)

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()]:
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    circles = sorted(f"{a} -> {b} -> ... -> {a}" for a in graph for b in graph[a] if reaches(b, a))
    assert circles == []


def test_the_committed_reference_results_are_found_under_their_ids():
    stored = {p.name for p in (ROOT / "results" / "reference" / "jobs").glob("*.json")}
    jobs = expand_grid(["erm", "lff"], ["cmnist"], [0, 1, 2], None, "paper")
    assert len(jobs) == 24 and all(f"{job.name}.json" in stored for job in jobs)
    lc = expand_grid(["lc"], ["cmnist"], [0], [0.5], "paper")  # stored before LC's use_lr_decay option existed
    assert [f"{job.name}.json" in stored for job in lc] == [True]
