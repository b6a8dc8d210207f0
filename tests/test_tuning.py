"""The tuning protocol: reproducible, independent search draws; selection across draws by each rule,
checked against a hand computation; clear errors for a bad search."""
import json
import random

import pytest

from benchmark.grid import jobs as jobs_module
from benchmark.errors import BenchError
from benchmark.grid.jobs import expand_grid
from benchmark.grid.search import draw_values, sample, seed_hash
from benchmark.grid.tuning import choose, tuned_records
from tests.helpers import cli

SPACE = {"optimizer.lr": {"log_uniform": [1e-4, 1e-2]}, "gce_q": {"uniform": [0.5, 0.9]},
         "clusters": {"choice": [8, 16, 32]}, "steps": {"int_uniform": [10, 20]}}


def test_draws_are_reproducible_bounded_and_draw_zero_is_the_defaults():
    assert draw_values("lff", "cmnist", SPACE, 0) == {}
    first = [draw_values("lff", "cmnist", SPACE, i) for i in range(1, 30)]
    assert first == [draw_values("lff", "cmnist", SPACE, i) for i in range(1, 30)]
    assert len({d["optimizer.lr"] for d in first}) == 29  # every draw its own value
    for d in first:
        assert 1e-4 <= d["optimizer.lr"] <= 1e-2 and 0.5 <= d["gce_q"] <= 0.9
        assert d["clusters"] in (8, 16, 32) and isinstance(d["steps"], int) and 10 <= d["steps"] <= 20
    assert draw_values("lff", "cifar10c", SPACE, 1) != first[0]  # seeded per dataset too
    assert seed_hash("a", 1) == seed_hash("a", 1) != seed_hash("a", 2)


def test_a_draw_does_not_depend_on_the_other_hyperparameters_of_the_space():
    smaller = {k: SPACE[k] for k in ("optimizer.lr", "clusters")}
    for i in range(1, 10):
        full, part = draw_values("prusc", "cmnist", SPACE, i), draw_values("prusc", "cmnist", smaller, i)
        assert {k: full[k] for k in smaller} == part


def test_log_uniform_is_uniform_in_the_exponent():
    rng = random.Random(0)
    values = [sample("log_uniform", [1e-4, 1e-2], rng) for _ in range(4000)]
    below = sum(v < 1e-3 for v in values) / len(values)
    assert 0.45 < below < 0.55


def test_a_search_grid_holds_the_defaults_and_n_draws_per_cell(monkeypatch):
    monkeypatch.setattr(jobs_module, "method_search_space", lambda m, d: {"optimizer.lr": {"log_uniform": [1e-4, 1e-2]}})
    grid = expand_grid(["erm"], ["synthetic"], [0, 1], [1], "quick", search=3)
    assert len(grid) == 4 * 2 and sorted({j.draw for j in grid}) == [0, 1, 2, 3]
    default = expand_grid(["erm"], ["synthetic"], [0], [1], "quick")[0]
    assert [j.id for j in grid if j.draw == 0 and j.seed == 0] == [default.id]  # draw 0 is the stored default run
    assert len({j.hparams["method"]["optimizer"]["lr"] for j in grid}) == 4
    assert grid[1].describe()["draw"] in (0, 1, 2, 3)


def test_a_bad_search_is_one_clear_error(monkeypatch, tmp_path):
    run = cli("--methods", "erm", "--datasets", "synthetic", "--search", "0", "--budget", "quick", "--results-dir", str(tmp_path))
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "--search N adds N >= 1" in run.stderr
    both = cli("--methods", "erm", "--datasets", "synthetic", "--search", "2", "--trials", "2", "--seeds", "0", "--results-dir", str(tmp_path))
    assert both.returncode == 2 and "give either --trials or --seeds" in both.stderr
    monkeypatch.setattr(jobs_module, "method_search_space", lambda m, d: {})
    with pytest.raises(BenchError, match="declares no search space: add a `search` section to configs/methods/erm.yaml"):
        expand_grid(["erm"], ["synthetic"], [0], [1], "quick", search=2)
    monkeypatch.setattr(jobs_module, "method_search_space", lambda m, d: {"no_such_key": {"uniform": [0, 1]}})
    with pytest.raises(BenchError, match="erm has no hyperparameter 'no_such_key'"):
        expand_grid(["erm"], ["synthetic"], [0], [1], "quick", search=2)
    monkeypatch.setattr(jobs_module, "method_search_space", lambda m, d: {"optimizer.lr": {"log_uniform": [0, 1]}})
    with pytest.raises(BenchError, match="log_uniform needs low > 0"):
        expand_grid(["erm"], ["synthetic"], [0], [1], "quick", search=2)


def _fake(setting, seed, valid_acc, valid_worst, valid_unbiased, test_unbiased, draw=None):
    def metrics(split_values):
        return {k: v for k, v in split_values.items()}
    valid = {"overall_acc": valid_acc, "worst_group_acc": valid_worst, "unbiased_acc": valid_unbiased}
    test = {"overall_acc": 0.5, "worst_group_acc": 0.1, "unbiased_acc": test_unbiased, "aligned_acc": 0.9, "conflicting_acc": 0.3}
    job = {"id": f"{setting}-{seed}", "method": "lff", "dataset": "cmnist", "conflict_pct": 1.0, "seed": seed, "budget": "paper",
           "hparams": {"method": {"lr": setting}, "dataset": {}}, **({"draw": draw} if draw is not None else {})}
    checkpoint = {"valid": metrics(valid), "test": metrics(test)}
    return {"job": job, "metrics": {r: checkpoint for r in ("last", "best-valid-accuracy", "best-valid-worst-group",
                                                            "best-valid-unbiased", "oracle-test")}}


def test_each_rule_picks_the_setting_a_hand_computation_picks():
    # three settings, two search seeds each; the columns: valid overall, valid worst, valid unbiased, test unbiased
    table = {
        0.001: [(0.95, 0.10, 0.50, 0.60), (0.93, 0.12, 0.52, 0.62)],   # best valid overall accuracy (mean 0.94)
        0.010: [(0.80, 0.40, 0.70, 0.65), (0.82, 0.30, 0.74, 0.66)],   # best worst group (0.35) and unbiased (0.72)
        0.100: [(0.60, 0.20, 0.60, 0.90), (0.62, 0.20, 0.62, 0.80)],   # best test (0.85): only the oracle takes it
    }
    records = [_fake(s, seed, *values, draw=i) for i, (s, rows) in enumerate(table.items()) for seed, values in enumerate(rows)]
    # the chosen setting of val-worst-group re-run with a third seed: a bad one must not change the choice
    records.append(_fake(0.010, 2, 0.1, 0.0, 0.0, 0.1, draw=1))
    picks = {rule: choose(records, rule) for rule in ("val-accuracy", "val-worst-group", "val-unbiased", "oracle-test")}
    lr = {rule: __import__("json").loads(next(iter(c.values())).setting)["method"]["lr"] for rule, c in picks.items()}
    assert lr == {"val-accuracy": 0.001, "val-worst-group": 0.010, "val-unbiased": 0.010, "oracle-test": 0.100}
    choice = next(iter(picks["val-worst-group"].values()))
    assert choice.seeds == (0, 1) and choice.settings == 3 and abs(choice.score - 0.35) < 1e-9 and choice.draw == 1
    kept, _ = tuned_records(records, "val-worst-group")
    assert sorted(r["job"]["seed"] for r in kept) == [0, 1, 2]  # the table reports every seed of the chosen setting


def test_report_tuned_prints_the_rule_and_the_search_size(tmp_path):
    out = tmp_path / "r"
    run = cli("--methods", "erm", "--datasets", "synthetic", "--set", "erm.optimizer.lr=0.0003,0.003", "--seeds", "0",
              "--budget", "quick", "--results-dir", str(out), "--no-progress")
    assert run.returncode == 0, run.stderr
    report = cli("report", str(out), "--tuned", "val-worst-group")
    assert report.returncode == 0, report.stderr
    assert "tuned: per cell the setting of 2 stored ones" in report.stdout and "rule: val-worst-group" in report.stdout
    assert "validation group labels" in report.stdout and "best-valid-worst-group" in report.stdout
    page = cli("report", str(out), "--tuned", "val-worst-group", "--format", "html")  # the page has no tuned table: say so
    assert page.returncode == 2 and page.stderr.count("\n") == 1 and "--tuned would be ignored there" in page.stderr


def test_tuned_run_searches_on_the_first_seed_then_runs_the_choice_and_the_defaults_on_every_trial(tmp_path):
    import json

    from benchmark.grid.store import Store

    out = tmp_path / "r"
    grid = ("--methods", "erm", "--datasets", "synthetic", "--search", "2", "--trials", "2", "--tuned", "val-worst-group",
            "--budget", "quick", "--results-dir", str(out))
    dry = cli(*grid, "--dry-run")  # the search's 3 jobs, the defaults on seed 1, and 1 whose setting the search picks: not all 6
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count(" to run  (draw ") == 4 and dry.stdout.count(" to run  (draw 0)") == 2
    assert "erm_synthetic_c1_s1  to run after the search: seed 1 of the setting" in dry.stdout
    assert "5 jobs: 0 stored, 0 to copy from a published twin, 0 failed before (run again), 5 to run (1 once the search" in dry.stdout
    run = cli(*grid, "--no-progress")
    assert run.returncode == 0, run.stderr
    records = Store(out, create=False).results()
    by_setting = {}
    for r in records:
        by_setting.setdefault(json.dumps(r["job"]["hparams"], sort_keys=True), []).append((r["job"]["seed"], r["job"]["draw"]))
    picked = next(iter(choose(records, "val-worst-group").values()))
    seeds_of = {v[0][1] if v[0][1] is not None else 0: sorted(s for s, _ in v) for v in by_setting.values()}
    assert seeds_of[picked.draw] == [0, 1] and seeds_of[0] == [0, 1]  # the chosen setting and the defaults on every trial
    assert sorted(len(v) for v in by_setting.values()) == ([1, 1, 2] if picked.draw == 0 else [1, 2, 2])
    stored = len(records)
    again = cli(*grid, "--dry-run").stdout  # once stored, every job the run trained, nothing left to pick
    assert again.count(" done") == stored and "after the search" not in again and f"{stored} jobs: {stored} stored" in again
    assert "tuned: per cell the setting of 3 stored ones" in run.stdout and "best-valid-worst-group" in run.stdout
    assert f"{stored} jobs: {stored} run now" in run.stderr and "untuned unbiased (Δ)" in run.stdout


def test_a_tuned_table_shows_the_chosen_draw_and_the_defaults_beside_it():
    from benchmark.reports.report import build_table
    from benchmark.reports.tuned import tuned_cells

    records = [_fake(0.001, 0, 0.9, 0.10, 0.5, 0.60, draw=0), _fake(0.001, 1, 0.9, 0.12, 0.5, 0.62),  # the defaults, seeds 0-1
               _fake(0.010, 0, 0.8, 0.40, 0.7, 0.65, draw=1), _fake(0.010, 1, 0.8, 0.30, 0.7, 0.71, draw=1)]
    kept, chosen = tuned_records(records, "val-worst-group")
    cells = tuned_cells(records, chosen, "best-valid-worst-group")
    (key, cell), = cells.items()
    assert key[:5] == ("cmnist", 1.0, "lff", "published", "paper")  # the tuning cell: its dataset options follow
    assert cell.draw == 1 and cell.untuned == pytest.approx([60.0, 62.0]) and cell.changes == "lr=0.01"
    table = build_table(kept, "best-valid-worst-group", tuning=cells)
    row = dict(zip(table.columns, table.rows[0]))
    assert row["draw"] == "1" and row["untuned unbiased (Δ)"] == "61.00 ± 12.71, n 2 (+7.00)"  # tuned 68.00 over seeds 0-1
    assert "chosen settings: the defaults in 0 of 1 cells; lff (cmnist 1 %): draw 1, lr=0.01." in table.notes
    assert table.numeric.loc[0, "untuned_unbiased_acc_mean"] == pytest.approx(61.0) and table.numeric.loc[0, "untuned_n"] == 2
    picked_defaults = tuned_cells(records, choose(records, "val-accuracy"), "best-valid-accuracy")  # draw 0 wins on overall
    assert picked_defaults[key].changes == "" and "the defaults in 1 of 1 cells." in build_table(
        tuned_records(records, "val-accuracy")[0], "best-valid-accuracy", tuning=picked_defaults).notes[-1]
    assert "draw" not in build_table(kept, "best-valid-worst-group").columns  # an untuned table keeps its columns
    from benchmark.reports.tuned import paper_notes

    assert paper_notes(records, kept, chosen, "best-valid-worst-group") == [  # a paper table keeps the paper's columns: notes
        "tuned minus untuned unbiased accuracy where the rule chose other settings than the defaults (draw 0, on the same data, "
        "split and checkpoint rule): lff (cmnist 1 %) +7.00 (tuned 68.00, n 2; defaults 61.00, n 2).", "chosen settings: the defaults in 0 of 1 cells; lff (cmnist 1 %): draw 1, lr=0.01."]


def test_a_search_store_labels_its_settings_by_draw():
    from benchmark.reports.report import build_table

    records = [_fake(0.001, 0, 0.9, 0.1, 0.5, 0.60, draw=0), _fake(0.001, 1, 0.9, 0.1, 0.5, 0.62),  # seed 1: the defaults run again
               _fake(0.010, 0, 0.8, 0.4, 0.7, 0.65, draw=1)]
    table = build_table(records)
    assert sorted(dict(zip(table.columns, r))["variant"] for r in table.rows) == ["draw 0 (defaults)", "draw 1"]
    assert any(n.startswith("draw N = the setting of the method's search draw N") for n in table.notes)
    swept = build_table(records[:2] + [_fake(0.010, 0, 0.8, 0.4, 0.7, 0.65)])  # a sweep, not a search: its values name it
    assert sorted(dict(zip(swept.columns, r))["variant"] for r in swept.rows) == ["lr=0.001", "lr=0.01"]
    assert not any(n.startswith("draw N") for n in swept.notes)


def test_with_both_validation_halves_the_group_rules_read_the_even_one():
    from benchmark.selection import select_all

    # two groups (aligned, conflicting); step 1 is best on the biased half's overall accuracy, step 2 on the even half's worst group
    total = {"valid": [99, 1], "valid_even": [50, 50], "test": [50, 50]}
    curve = [{"stage": "s", "step": 1, "valid": [99, 0], "valid_even": [50, 5], "test": [50, 5]},
             {"stage": "s", "step": 2, "valid": [90, 1], "valid_even": [45, 40], "test": [45, 40]}]
    chosen = select_all(curve, total, [True, False], "s")
    assert chosen["best-valid-accuracy"]["step"] == 1 and chosen["best-valid-worst-group"]["step"] == 2
    assert chosen["best-valid-unbiased"]["step"] == 2 and "valid_even" in chosen["last"]
    record = {"job": {"id": "a", "method": "lff", "dataset": "cmnist", "conflict_pct": 1.0, "seed": 0, "budget": "paper",
                      "hparams": {"method": {}, "dataset": {}}, "draw": 0}, "metrics": chosen}
    picked = next(iter(choose([record], "val-worst-group").values()))
    assert picked.split == "valid_even" and abs(picked.score - 0.8) < 1e-9
    assert next(iter(choose([record], "val-accuracy").values())).split == "valid"
    from benchmark.grid.tuning import caption

    assert "best mean valid_even worst-group accuracy" in caption("val-worst-group", choose([record], "val-worst-group"))


def _on_data(record, **options):
    record["job"]["hparams"]["dataset"] = dict(options)
    record["job"]["id"] += "".join(f"-{k}{v}" for k, v in sorted(options.items()))
    return record


def test_settings_on_different_data_never_compete_and_the_defaults_come_from_the_same_data():
    from benchmark.reports.tuned import tuned_cells

    even = [_on_data(_fake(0.001, 0, 0.80, 0.30, 0.60, 0.60, draw=0), valid_fraction=0.1, valid_bias="even"),
            _on_data(_fake(0.010, 0, 0.70, 0.40, 0.70, 0.70, draw=1), valid_fraction=0.1, valid_bias="even")]
    # a held-out split biased like training scores higher overall accuracy: it must not beat the even split's settings
    train = [_on_data(_fake(0.100, 0, 0.97, 0.00, 0.50, 0.40, draw=2), valid_fraction=0.1, valid_bias="train")]
    chosen = choose(even + train, "val-accuracy")
    assert len(chosen) == 2  # one cell per data
    by_bias = {json.loads(cell[5])["valid_bias"]: c for cell, c in chosen.items()}
    assert by_bias["even"].draw == 0 and by_bias["train"].draw == 2 and by_bias["train"].settings == 1
    cells = tuned_cells(even + train, chosen, "best-valid-accuracy")
    train_cell = next(c for key, c in cells.items() if json.loads(key[5])["valid_bias"] == "train")
    assert train_cell.untuned == [] and train_cell.changes is None  # the defaults ran on other data: not its untuned value


def test_with_no_seed_common_to_all_settings_each_is_scored_on_the_search_seed():
    records = [_fake(0.001, 1, 0.99, 0.9, 0.9, 0.9, draw=0), _fake(0.001, 2, 0.99, 0.9, 0.9, 0.9, draw=0),  # defaults: seed 0 failed
               _fake(0.010, 0, 0.80, 0.4, 0.7, 0.6, draw=1), _fake(0.100, 0, 0.70, 0.3, 0.6, 0.5, draw=2)]
    picked = next(iter(choose(records, "val-accuracy").values()))
    assert picked.draw == 1 and picked.seeds == (0,)  # as the tuned run chose from its seed-0 search, not the defaults' seeds 1-2


def test_a_cell_whose_search_nothing_could_score_is_not_run_again():
    from types import SimpleNamespace

    from benchmark.grid.tuning import run_tuned

    jobs = expand_grid(["erm"], ["synthetic"], [0, 1], [1], "quick", search=1)
    calls = []

    def run(batch):
        calls.append([j.id for j in batch])
        return {"done": 0, "elsewhere": 0, "failed": [(j, "boom") for j in batch]}

    summary, final, chosen = run_tuned(jobs, "val-accuracy", run, SimpleNamespace(results=lambda: []))
    search_ids = {j.id for j in jobs if j.seed == 0}
    assert chosen == {} and set(calls[0]) == search_ids and not search_ids & set(calls[1])  # the failed search ran once
    assert search_ids <= {j.id for j in final} and summary["skipped"] == 0
