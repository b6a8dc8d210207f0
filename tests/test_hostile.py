"""The hostile and careless user's battery: every case below once crashed, hung, ran planted code
or did something silently wrong. Each must now give one clear `error:` line with exit 2 before
anything trains, or heal the store, and planted payloads must never run."""
import json
import os
import pickle
import time
from pathlib import Path

import pytest
import torch

import datasets
from benchmark.cli import main
from benchmark.grid.jobs import expand_grid, file_stem
from benchmark.grid.runner import run_job, runtime_options
from benchmark.grid.store import Store

QUICK = ["--methods", "erm", "--datasets", "synthetic", "--budget", "quick", "--no-progress", "--seeds", "0"]


class Payload:
    """Unpickling this creates `marker`: proof that a loader ran code from a file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def one_error_line(capsys, code, *fragments, started=False):
    """Exit 2 and one `error:` line on stderr (`started`: the last line, after the run's own announcements)."""
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    if started:
        lines = lines[-1:]
        assert "Traceback" not in err and err.count("error: ") == 1, err
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def config(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return ["--config", str(path)]


# Bad values: (case, extra arguments, or a function of tmp_path giving them; fragments of the error line)
BAD_INPUT = [
    ("lr nan", ["--set", "optimizer.lr=nan"], ["erm.optimizer.lr = nan", "finite number > 0"]),
    ("lr inf", ["--set", "optimizer.lr=inf"], ["erm.optimizer.lr = inf"]),
    ("lr inf in a sweep", ["--set", "optimizer.lr=0.001,inf"], ["erm.optimizer.lr = inf"]),
    ("fractional steps", ["--set", "steps=1.5"], ["erm.steps = 1.5", "whole number >= 1"]),
    ("zero steps", ["--set", "steps=0"], ["erm.steps = 0", "whole number >= 1"]),
    ("negative steps", ["--set", "steps=-5"], ["erm.steps = -5"]),
    ("zero batch", ["--set", "batch_size=0"], ["erm.batch_size = 0"]),
    ("word for a number", ["--set", "synthetic.train_size=abc"], ["synthetic.train_size = 'abc'", "whole number"]),
    ("option out of range", ["--set", "synthetic.background=2"], ["synthetic.background = 2", "[0, 1]"]),
    ("unknown optimiser", ["--set", "optimizer.name=rmsprop"], ["must be one of adam, sgd"]),
    ("momentum on adam", ["--set", "erm.optimizer.momentum=0.9"], ["adam takes no momentum"]),
    ("misspelt --set key", ["--set", "optimiser.lr=0.1"], ["did you mean 'optimizer.lr'"]),
    ("unknown amp", ["--set", "amp=fp32"], ["erm.amp = 'fp32'", "off, bf16, fp16"]),
    ("--jobs 0", ["--jobs", "0"], ["--jobs must be 1 or more"]),
    ("--log-every 0", ["--log-every", "0"], ["--log-every must be 1 or more"]),
    ("--threads 0", ["--threads", "0"], ["--threads must be 1 or more"]),
    ("seed beyond int64", ["--seeds", str(2**64)], ["out of range", "2**63 - 1"]),
    ("--checkpoint-minutes nan", ["--checkpoint-minutes", "nan"], ["--checkpoint-minutes must be a finite number"]),
    ("config: unknown top-level key", lambda t: config(t, "method:\n  erm: {steps: 3}\n"), ["unknown top-level key 'method'", "did you mean 'methods'"]),
    ("config: unknown method", lambda t: config(t, "methods:\n  ermm: {steps: 3}\n"), ["methods.ermm: no such method", "did you mean 'erm'"]),
    ("config: misspelt hyperparameter", lambda t: config(t, "methods:\n  erm:\n    optimiser: {lr: 0.1}\n"),
     ["erm has no hyperparameter 'optimiser.lr'", "did you mean 'optimizer.lr'"]),
    ("config: unknown dataset option", lambda t: config(t, "datasets:\n  synthetic: {train_sise: 10}\n"),
     ["has no option 'train_sise'", "did you mean 'train_size'"]),
    ("config: fractional steps", lambda t: config(t, "methods:\n  erm: {steps: 2.5}\n"), ["erm.steps = 2.5"]),
    ("config: mapping replaced", lambda t: config(t, "methods:\n  erm: {optimizer: 3}\n"), ["it must be a mapping"]),
    ("paper name as a path", ["--paper", "../../configs/defaults"], ["unknown paper table '../../configs/defaults'"]),
    ("metadata folder outside the data root", lambda t: ["--datasets", "waterbirds", "--data-root", str(t), "--set",
                                                          "waterbirds.folder=../elsewhere"], ["points outside", "without '..'"]),
]


@pytest.mark.parametrize("args,fragments", [pytest.param(a, f, id=case) for case, a, f in BAD_INPUT])
def test_bad_value_is_one_line_before_anything_trains(args, fragments, tmp_path, capsys):
    extra = args(tmp_path) if callable(args) else args
    code = main([*QUICK, "--results-dir", str(tmp_path / "res"), *extra])
    one_error_line(capsys, code, *fragments)
    assert not (tmp_path / "res" / "jobs").exists() and not (tmp_path / "res" / "logs").exists()


def test_a_planted_checkpoint_does_not_run_and_the_job_starts_over(tmp_path):
    job = expand_grid(["erm"], ["synthetic"], [0], None, "quick", [("steps", [30])])[0]
    store = Store(tmp_path)
    planted, marker = store.checkpoint_path(job), tmp_path / "ran"
    planted.parent.mkdir(parents=True)
    torch.save({"position": Payload(marker)}, planted)
    torch.load(planted, weights_only=False)  # the payload is live: an unsafe load runs it
    assert marker.exists()
    marker.unlink()
    out = run_job(job, str(tmp_path), runtime_options("cpu"))
    assert out["status"] == "done" and not marker.exists()
    assert store.results()[0]["resumed_from_step"] == 0
    log = [json.loads(line) for line in store.log_path(job).read_text().splitlines()]
    assert any(e["event"] == "checkpoint_dropped" and "tensors and plain values" in e["reason"] for e in log)


def test_a_planted_shared_stage_does_not_run(tmp_path):
    from methods import METHODS

    job = expand_grid(["dcwp"], ["synthetic"], [0], None, "quick")[0]
    store = Store(tmp_path)
    planted = store.shared_stage_path(job, "mine", METHODS["dcwp"].shared_stages["mine"], extra=2)
    planted.parent.mkdir(parents=True)
    marker = tmp_path / "ran"
    torch.save(Payload(marker), planted)
    out = run_job(job, str(tmp_path), runtime_options("cpu", max_stage_steps=2))
    assert out["status"] == "done" and not marker.exists()
    assert store.results()[0]["reused_stages"] == []


def test_a_real_checkpoint_still_resumes_exactly(tmp_path):
    job = expand_grid(["lff"], ["synthetic"], [0], None, "quick", [("steps", [60])])[0]
    whole = run_job(job, str(tmp_path / "whole"), runtime_options("cpu"))
    cut = run_job(job, str(tmp_path / "cut"), runtime_options("cpu", stop_after_steps=25, checkpoint_seconds=0))
    assert cut["status"] == "failed" and Store(tmp_path / "cut").checkpoint_path(job).exists()
    resumed = run_job(job, str(tmp_path / "cut"), runtime_options("cpu"))
    a, b = Store(tmp_path / "whole").results()[0], Store(tmp_path / "cut").results()[0]
    assert whole["status"] == resumed["status"] == "done" and b["resumed_from_step"] == 25
    assert a["curve"] == b["curve"] and a["metrics"] == b["metrics"]


def test_a_planted_cifar_batch_does_not_run(tmp_path):
    args = datasets.DATASETS["cifar10c"].make_fixture(tmp_path)
    batch, marker = tmp_path / "cifar-10-batches-py" / "data_batch_1", tmp_path / "ran"
    batch.write_bytes(pickle.dumps({"data": Payload(marker), "labels": [0]}, protocol=2))
    with pytest.raises(datasets.base.BenchError, match="not a CIFAR-10 batch file"):
        datasets.load("cifar10c", args["conflict_pct"], root=args["root"], **args["options"])
    assert not marker.exists()
    pickle.loads(batch.read_bytes())  # the payload is live: plain unpickling runs it
    assert marker.exists()


@pytest.mark.parametrize("name,column", [("waterbirds", "img_filename"), ("isic", "isic_id"), ("celeba", "image_id")])
@pytest.mark.parametrize("escape", ["../../outside.jpg", "/etc/hostname"])
def test_a_metadata_path_outside_the_data_root_is_refused(name, column, escape, tmp_path):
    import pandas as pd

    args = datasets.DATASETS[name].make_fixture(tmp_path)
    options = dict(args["options"])
    if name == "celeba":
        csv = tmp_path / "celeba" / "subsampled.csv"
        table = pd.read_csv(tmp_path / "celeba" / "list_attr_celeba.txt", sep=r"\s+", skiprows=1).rename_axis("image_id").reset_index()
        table = table.join(pd.read_csv(tmp_path / "celeba" / "list_eval_partition.txt", sep=r"\s+", header=None,
                                       names=["image_id", "split"], index_col=0), on="image_id")
        options["metadata"] = csv.name
    else:
        csv = next((tmp_path / name).glob("*.csv"))
        table = pd.read_csv(csv)
    table.loc[0, column] = escape
    table.to_csv(csv, index=False)
    with pytest.raises(datasets.base.BenchError, match="points outside"):
        datasets.load(name, args["conflict_pct"], root=args["root"], **options)


def test_stored_names_never_become_paths(tmp_path, capsys):
    assert file_stem("../../etc/x") == "_.._etc_x" and "/" not in file_stem("a/b") and not file_stem(".hidden").startswith(".")
    run = main([*QUICK, "--results-dir", str(tmp_path)])
    assert run == 0
    (path,) = (tmp_path / "jobs").glob("*.json")
    record = json.loads(path.read_text())
    record["job"]["dataset"] = "../../../escaped"
    path.write_text(json.dumps(record))
    capsys.readouterr()
    one_error_line(capsys, main(["plot", "ratio", str(tmp_path)]), "is unusable", "is not a name", "--repair")
    assert not list(tmp_path.parent.rglob("*escaped*"))


@pytest.mark.parametrize("damage", ["no metrics", "no job", "not json", "empty"])
def test_an_unusable_result_is_named_then_repaired(damage, tmp_path, capsys):
    res = str(tmp_path)
    assert main([*QUICK, "--seeds", "0", "1", "--results-dir", res]) == 0
    path = sorted((tmp_path / "jobs").glob("*.json"))[0]
    record = json.loads(path.read_text())
    text = {"no metrics": json.dumps({k: v for k, v in record.items() if k != "metrics"}),
            "no job": json.dumps({k: v for k, v in record.items() if k != "job"}), "not json": "{", "empty": ""}[damage]
    path.write_text(text)
    capsys.readouterr()
    for argv in (["report", res], [*QUICK, "--seeds", "0", "1", "--results-dir", res]):
        one_error_line(capsys, main(argv), str(path), "is unusable", "--repair")
    assert main(["status", res]) == 0 and f"unusable: {path}" in capsys.readouterr().out
    assert main([*QUICK, "--seeds", "0", "1", "--results-dir", res, "--repair"]) == 0
    err = capsys.readouterr().err
    assert "repair: moved" in err and "1 run now, 1 already in the store" in err
    assert (tmp_path / "quarantine" / "jobs" / path.name).read_text() == text and len(Store(res).results()) == 2


def test_failure_records_of_non_finite_values_can_always_be_written(tmp_path):
    from benchmark.grid.runner import _failed

    job = expand_grid(["erm"], ["synthetic"], [0], None, "quick")[0]
    out = _failed(job, Store(tmp_path), ValueError(f"loss {float('nan')}"))
    (stored,) = Store(tmp_path).failures()
    assert out["status"] == "failed" and stored["reason"] == "ValueError: loss nan"
    stored_job = dict(job.describe())
    stored_job["hparams"] = {"method": {"lr": float("inf")}}
    from benchmark.grid.store import json_safe, write_json_atomic

    write_json_atomic(tmp_path / "x.json", json_safe({"job": stored_job}))
    assert json.loads((tmp_path / "x.json").read_text())["job"]["hparams"]["method"]["lr"] == "inf"


def test_a_results_directory_that_stops_taking_writes_stops_the_run_and_a_rerun_resumes(tmp_path, capsys, monkeypatch):
    root = tmp_path / "res"
    original = Store.write_result

    def then_break(self, job, record):  # the first result lands, then the directory is gone (a file in its place)
        original(self, job, record)
        root.rename(tmp_path / "moved")
        root.write_text("")

    monkeypatch.setattr(Store, "write_result", then_break)
    code = main([*QUICK, "--seeds", "0", "1", "2", "--results-dir", str(root)])
    one_error_line(capsys, code, f"results directory {root} stopped taking writes", "rerun the same command to resume", started=True)
    monkeypatch.setattr(Store, "write_result", original)
    root.unlink()
    (tmp_path / "moved").rename(root)
    assert main([*QUICK, "--seeds", "0", "1", "2", "--results-dir", str(root)]) == 0
    assert "2 run now, 1 already in the store" in capsys.readouterr().err
    assert not list((root / "claims").iterdir())


def test_a_zero_byte_claim_goes_stale_by_its_file_time_and_is_taken_over(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DEBIASBENCH_CLAIM_TTL", "2")
    job = expand_grid(["erm"], ["synthetic"], [0], None, "quick")[0]
    store = Store(tmp_path)
    claim = store.claim_path(job)
    claim.parent.mkdir(parents=True)
    claim.write_bytes(b"")
    assert main(["status", str(tmp_path)]) == 0 and "running" in capsys.readouterr().out.splitlines()[0]
    old = time.time() - 10
    os.utime(claim, (old, old))
    main(["status", str(tmp_path)])
    assert " 1 " in capsys.readouterr().out.splitlines()[2].split("synthetic")[1][:30]  # stalled column
    assert main([*QUICK, "--results-dir", str(tmp_path)]) == 0
    assert "held by other runners" not in capsys.readouterr().err  # taken over at once, not waited for
    (record,) = store.results()
    assert record["lost_attempts"][0]["reason"].startswith("claim file unreadable") and not claim.exists()


def test_a_stale_takeover_marker_does_not_block_the_takeover(tmp_path, monkeypatch):
    from benchmark.grid.claims import try_claim

    monkeypatch.setenv("DEBIASBENCH_CLAIM_TTL", "1")
    path = tmp_path / "claims" / "job.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"owner": "dead", "host": "h", "pid": 1, "heartbeat": time.time() - 100, "attempt": 1, "history": []}))
    marker = path.with_name(f".{path.name}.takeover.dead")  # a runner killed in the middle of taking it over
    marker.write_text("")
    os.utime(marker, (time.time() - 100, time.time() - 100))
    taken, _ = try_claim(path)
    assert taken is not None and taken.attempt == 2
    taken.release()


def test_leftovers_of_killed_writes_and_finished_jobs_are_cleaned(tmp_path, monkeypatch):
    monkeypatch.setenv("DEBIASBENCH_CLAIM_TTL", "5")
    job = expand_grid(["erm"], ["synthetic"], [0], None, "quick")[0]
    store = Store(tmp_path)
    assert run_job(job, str(tmp_path), runtime_options("cpu"))["status"] == "done"
    old = time.time() - 60
    leftovers = [store.root / "jobs" / f".{job.name}.json.3f2a.tmp", store.root / "checkpoints" / f".{job.name}.pt.tmp9c1d",
                 store.root / "claims" / f".{job.name}.json.abc.new", store.root / "artifacts" / f".{job.name}.77.tmp.npz",
                 store.root / ".write-test.1.tmp"]
    young = store.root / "failed" / f".{job.name}.json.live.tmp"  # a live writer's: left alone
    for path in [*leftovers, young]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    for path in leftovers:
        os.utime(path, (old, old))
    store.claim_path(job).write_text(json.dumps({"owner": "x", "heartbeat": old}))  # a finished job's claim
    removed = store.clean(older_than=5)
    assert sorted(removed) == sorted([*leftovers, store.claim_path(job)]) and young.exists()


def test_stored_files_are_created_like_the_logs(tmp_path):
    previous = os.umask(0o022)
    try:
        job = expand_grid(["erm"], ["synthetic"], [0], None, "quick", [("steps", [10])])[0]
        run_job(job, str(tmp_path), runtime_options("cpu"))
        store = Store(tmp_path)
        modes = {p.name: p.stat().st_mode & 0o777 for p in (store.result_path(job), store.log_path(job))}
    finally:
        os.umask(previous)
    assert set(modes.values()) == {0o644}, modes


KILL_GRID = [*QUICK, "--set", "steps=60", "--log-every", "20", "--checkpoint-minutes", "0"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    from benchmark.grid import chaos

    root = tmp_path_factory.mktemp("whole")
    assert chaos._finish(chaos._start(root, grid=KILL_GRID))[0] == 0
    return chaos.stored(root)


@pytest.mark.parametrize("point", ["json_write:2", "checkpoint_write:1"])
def test_a_kill_inside_a_write_leaves_nothing_half_written_and_a_rerun_completes(point, tmp_path, uninterrupted):
    """benchmark/grid/chaos.py's check on one job: killed between a temp file and its rename (the
    result's, or a checkpoint's), the rerun ends with the uninterrupted run's result."""
    from benchmark.grid import chaos

    grid = KILL_GRID
    code, _ = chaos._finish(chaos._start(tmp_path / "killed", {"DEBIASBENCH_KILL_AT": point}, grid=grid))
    assert code == -9 and not list((tmp_path / "killed" / "jobs").glob("*.json"))
    assert any(chaos.is_temp(p.name) for p in (tmp_path / "killed").rglob(".*"))
    time.sleep(float(chaos.ENV["DEBIASBENCH_CLAIM_TTL"]) + 0.5)
    assert chaos._finish(chaos._start(tmp_path / "killed", grid=grid))[0] == 0
    assert chaos.verify(tmp_path / "killed", uninterrupted) == []
