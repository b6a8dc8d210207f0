"""The Python API does what the command line does, with Python values; --dry-run prints the grid."""
import pytest

from benchmark import api
from benchmark.errors import BenchError
from tests.helpers import cli


def test_grid_takes_python_values_and_matches_the_cli(tmp_path):
    jobs = api.grid(["erm", "lff"], ["synthetic"], seeds=[0], conflict_pcts=[1], budget="quick",
                    sets={"lff.gce_q": [0.5, 0.7], "erm.optimizer.lr": 0.002})
    assert sorted(j.method for j in jobs) == ["erm", "lff", "lff"]
    assert {j.hparams["method"]["gce_q"] for j in jobs if j.method == "lff"} == {0.5, 0.7}
    assert next(j for j in jobs if j.method == "erm").hparams["method"]["optimizer"]["lr"] == 0.002
    dry = cli("--methods", "erm", "lff", "--datasets", "synthetic", "--seeds", "0", "--budget", "quick",
              "--set", "lff.gce_q=0.5,0.7", "--set", "erm.optimizer.lr=0.002", "--results-dir", str(tmp_path / "r"), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert sorted(line.split()[0] for line in dry.stdout.splitlines()[:-1]) == sorted(j.name for j in jobs)
    assert dry.stdout.splitlines()[-1].startswith("3 jobs: 0 stored") and not (tmp_path / "r").exists()
    with pytest.raises(BenchError, match="unknown method 'nope'"):
        api.grid(["nope"], ["synthetic"])
    notes = []
    every = api.grid("all", ["cmnist"], seeds=[0], conflict_pcts=[1], budget="quick", notes=notes)
    assert "dfr" not in {j.method for j in every} and any("dfr" in n for n in notes)


def test_run_load_and_a_tidy_frame(tmp_path):
    jobs = api.grid(["erm"], ["synthetic"], seeds=[0, 1], conflict_pcts=[1], budget="quick", sets={"optimizer.lr": [0.001, 0.003]})
    out = tmp_path / "r"
    summary = api.run(jobs, out, device="cpu", max_stage_steps=30)
    assert summary["done"] == 4 and not summary["failed"]
    assert api.run(jobs, out, device="cpu")["skipped"] == 4  # resumable
    res = api.load(out)
    df = res.frame(groups=True, curves=True)
    assert len(df) == 4 and sorted(df["hp.optimizer.lr"].unique()) == [0.001, 0.003]
    assert {"method", "dataset", "conflict_pct", "seed", "protocol", "supervision", "unbiased_acc", "worst_group_acc",
            "steps", "data.train_size", "device"} <= set(df.columns)
    assert not df["device"].eq("unknown device").any()  # each run's device name, as its result recorded it
    assert df["unbiased_acc"].between(0, 100).all() and (df["steps"] == 30).all()
    assert len(df["group_acc"].iloc[0]) == 16 and df["curve"].iloc[0][-1]["stage"] == "train"
    assert "optimizer.lr=0.001 (default)" in res.table()
    assert "optimizer.lr=0.001 (default)" in res.table(methods=["erm"], conflict_pcts=[1])
    with pytest.raises(BenchError, match="no stored result .* matches methods lff"):
        res.table(methods=["lff"])
    with pytest.raises(BenchError, match="unknown table filter method: the filters are methods"):
        res.table(method=["erm"])
    assert "Test accuracy" in res.table(fmt="markdown") and "denetdm" in res.paper("denetdm-table1")
    paths = res.plot("ratio", tmp_path / "figs")
    assert sorted(p.suffix for p in paths) == [".pdf", ".png"]
    described = api.describe(jobs, out)
    assert described.count(" done") == 4 and described.splitlines()[-1].startswith("4 jobs: 4 stored")
    for rec in res.records[:1]:  # a run without a validation split beside runs with one: NaN, not an error
        for rule in rec["metrics"].values():
            rule.pop("valid", None)
    valid = res.frame(split="valid")
    assert valid["unbiased_acc"].isna().sum() == 1 and valid["unbiased_acc"].notna().sum() == 3
    for rec in res.records:
        for rule in rec["metrics"].values():
            rule.pop("valid", None)
    with pytest.raises(BenchError, match="no stored run has a 'valid' split"):
        res.frame(split="valid")


def test_dry_run_estimates_the_time_from_stored_runs_of_the_same_kind():
    from benchmark.api import estimate_line
    from benchmark.grid.jobs import expand_grid

    def stored(method: str, minutes: float, device: str = "AMD EPYC", twin: bool = False) -> dict:
        job = {"method": method, "dataset": "cmnist", "budget": "paper", "hparams": {"method": {}, "dataset": {}}}
        kind = "cuda:0" if device == "GPU" else "cpu"
        return {"job": job, "timings": {"a": {"steps": 10, "seconds": 60.0 * minutes}},
                "environment": {"device_name": device, "device": kind}, **({"twin_of": "x"} if twin else {})}

    records = [stored("erm", 2), stored("erm", 4), stored("erm", 30), stored("lff", 5, "GPU"), stored("lff", 100, twin=True)]
    cpu = estimate_line(expand_grid(["erm", "lff"], ["cmnist"], [0], [1], "paper"), records, "cpu")
    assert "erm/cmnist 1 x 4 min" in cpu and cpu.endswith("no stored run on cpu to estimate lff/cmnist")  # lff's only own run: a GPU's
    jobs = expand_grid(["erm", "lff", "dcwp"], ["cmnist"], [0, 1], [1], "paper")
    line = estimate_line(jobs, records)
    # erm: median of 2, 4, 30 = 4 min, twice; lff: 5 min twice (the twin's seconds are not its own): 18 min = 0.3 h
    assert line.startswith("time: about 0.3 h of training one job after another, 0.2 h at the fastest stored run of each kind")
    assert "erm/cmnist 2 x 4 min" in line and "lff/cmnist 2 x 5 min" in line  # fastest: 2 x 2 + 2 x 5 = 14 min = 0.2 h
    assert "they ran on AMD EPYC, GPU" in line and line.endswith("no stored run to estimate dcwp/cmnist")
    assert estimate_line(jobs, []) == "time: no estimate; no stored run to estimate dcwp/cmnist, erm/cmnist, lff/cmnist"


def test_the_estimate_counts_a_shared_stage_once_per_seed():
    from benchmark.api import estimate_line

    run = {"job": {"method": "dcwp", "dataset": "cmnist", "budget": "paper", "hparams": {"method": {}, "dataset": {}}},
           "timings": {"pretrain": {"seconds": 3600.0}, "mine": {"seconds": 60.0}, "prune": {"seconds": 540.0}},
           "environment": {"device_name": "AMD EPYC", "device": "cpu"}}
    sweep = api.grid(["dcwp"], ["cmnist"], seeds=[0, 1], conflict_pcts=[1], sets={"dcwp.lambda_sparse": [1e-8, 1e-7, 1e-6]})
    line = estimate_line(sweep, [run], "cpu")  # per seed one full run, then two that start after the shared mining
    assert "dcwp/cmnist 2 x 70 min, dcwp/cmnist after its shared mine stage 4 x 9 min;" in line
    assert line.startswith("time: about 2.9 h of training one job after another")
    stored = estimate_line(sweep, [run], "cpu", saved=lambda job, stage, ignored: job.seed == 0 and stage == "mine")
    assert "dcwp/cmnist 1 x 70 min, dcwp/cmnist after its shared mine stage 5 x 9 min;" in stored
    lr = api.grid(["dcwp"], ["cmnist"], seeds=[0], conflict_pcts=[1], sets={"dcwp.pretrain.optimizer.lr": [1e-3, 1e-2]})
    assert "dcwp/cmnist 2 x 70 min;" in estimate_line(lr, [run], "cpu")  # a pre-training setting shares nothing


def test_dry_run_falls_back_to_the_committed_reference_runs(tmp_path):
    jobs = api.grid(["erm"], ["cmnist"], seeds=[0], conflict_pcts=[1])
    last = api.describe(jobs, tmp_path / "fresh", "cpu").splitlines()[-1]
    assert "median of the committed reference runs (results/reference) of the same kind: erm/cmnist 1 x" in last
    quick = api.grid(["erm"], ["synthetic"], seeds=[0], conflict_pcts=[1], budget="quick")
    assert api.describe(quick, tmp_path / "fresh", "cpu").splitlines()[-1].startswith("1 jobs: 0 stored")  # nothing to go by
