"""Job ids hash what changes a result and nothing else; --set expands the grid; configs resolve."""
import json

import pytest

from benchmark.config import method_hparams, parse_sets
from benchmark.errors import BenchError
from benchmark.grid.jobs import expand_grid


def test_job_id_is_stable_and_depends_on_the_science_only():
    a = expand_grid(["erm"], ["synthetic"], [0], [5], "quick")[0]
    b = expand_grid(["erm"], ["synthetic"], [0], [5], "quick")[0]
    assert a.id == b.id and len(a.id) == 12
    assert a.id != expand_grid(["erm"], ["synthetic"], [1], [5], "quick")[0].id
    assert a.id != expand_grid(["erm"], ["synthetic"], [0], [5], "paper")[0].id
    assert a.id != expand_grid(["erm"], ["synthetic"], [0], [5], "quick", parse_sets(["optimizer.lr=0.01"]))[0].id
    assert a.id != expand_grid(["erm"], ["synthetic"], [0], [5], "quick", parse_sets(["synthetic.seed=1"]))[0].id
    assert "device" not in a.hparams_json and "results" not in a.hparams_json


def test_grid_is_the_product_of_the_lists_and_set_values():
    jobs = expand_grid(["erm"], ["cmnist"], [0, 1], None, "paper", parse_sets(["optimizer.lr=0.001,0.01"]))
    assert len(jobs) == 4 * 2 * 2
    assert {j.hparams["method"]["optimizer"]["lr"] for j in jobs} == {0.001, 0.01}
    assert {j.conflict_pct for j in jobs} == {0.5, 1.0, 2.0, 5.0}


def test_official_cmnist_erm_numbers_resolve():
    hp = method_hparams("erm", "cmnist", "paper")
    assert hp["steps"] == 23500 and hp["batch_size"] == 256 and hp["optimizer"]["lr"] == 1e-3
    assert hp["model"]["hidden"] == [100, 100, 100] and hp["model"]["input_divisor"] == 255
    assert method_hparams("erm", "cmnist", "quick")["steps"] == 300


@pytest.mark.parametrize("sets,message", [
    (["optimizer.lr"], "malformed --set"),
    (["=3"], "malformed --set"),
    (["no_such_key=1"], "no selected method has a hyperparameter"),
    (["synthetic.no_such_option=1"], "has no option"),
    (["erm.no_such_key=1"], "method erm has no hyperparameter"),
])
def test_bad_sets_are_clear_errors(sets, message):
    with pytest.raises(BenchError, match=message):
        expand_grid(["erm"], ["synthetic"], [0], [5], "quick", parse_sets(sets))


def test_conflict_pct_out_of_range_is_refused_before_running():
    with pytest.raises(BenchError, match=r"conflict_pct must be a percentage in \(0, 100\)"):
        expand_grid(["erm"], ["cmnist"], [0], [150], "quick")
    with pytest.raises(BenchError, match="exists only at conflict_pct"):
        expand_grid(["erm"], ["cmnist-disent"], [0], [3], "quick")


def test_method_prefixed_sets_sweep_one_method_and_read_exponents_as_numbers():
    jobs = expand_grid(["erm", "dcwp"], ["synthetic"], [0], [1], "quick", parse_sets(["dcwp.lambda_sparse=1e-8,1e-6"]))
    by_method = {m: [j for j in jobs if j.method == m] for m in ("erm", "dcwp")}
    assert len(by_method["erm"]) == 1 and len(by_method["dcwp"]) == 2
    assert sorted(j.hparams["method"]["lambda_sparse"] for j in by_method["dcwp"]) == [1e-8, 1e-6]
    assert parse_sets(["a=1e-3,2,true,adam"]) == [("a", [1e-3, 2, True, "adam"])]


def test_official_dcwp_cmnist_numbers_resolve_per_ratio():
    hp = {pct: method_hparams("dcwp", "cmnist", "paper", conflict_pct=pct) for pct in (0.5, 1, 2, 5)}
    assert [hp[p]["lambda_upweight"] for p in (0.5, 1, 2, 5)] == [80, 50, 30, 10]
    h = hp[1]
    assert (h["miner"]["steps"], h["pretrain"]["steps"], h["prune"]["steps"], h["finetune"]["steps"]) == (2000, 10000, 2000, 1000)
    assert h["miner"]["optimizer"]["name"] == "sgd" and h["pretrain"]["optimizer"]["lr"] == 1e-2
    assert h["lambda_sparse"] == 1e-8 and h["prune_upweight"] == 80 and h["model"]["name"] == "cnn"
    assert method_hparams("dcwp", "celeba", "paper")["lambda_sparse"] == 5e-6
    unlisted = {pct: method_hparams("dcwp", "cmnist", "paper", conflict_pct=pct)["lambda_upweight"] for pct in (0.2, 1.5, 3.5, 10)}
    assert unlisted == {0.2: 80, 1.5: 50, 3.5: 30, 10: 10}  # the nearest listed ratio, the smaller on a tie


def test_an_option_at_its_neutral_default_leaves_the_job_id_unchanged():
    """DeNetDM's poe_selection came after its Colored MNIST results were stored: at `last` (the
    behaviour those runs had) the id is the one without the option; any other value is a new job."""
    (job,) = expand_grid(["denetdm"], ["cmnist"], [0], [1], "paper", [], None)
    without = json.loads(job.hparams_json)
    del without["method"]["poe_selection"], without["method"]["channels_last"]  # the harness's own, at its neutral default too
    assert job.id == job._digest(without)
    (oracle,) = expand_grid(["denetdm"], ["cmnist"], [0], [1], "paper", [("denetdm.poe_selection", ["oracle-test"])], None)
    assert oracle.id != job.id


def test_gpu_packing_follows_the_smallest_share_of_the_grid():
    from benchmark.grid.runner import _local_workers, jobs_per_gpu

    small = expand_grid(["erm"], ["cmnist"], [0], [1.0], "quick")
    cifar = expand_grid(["erm"], ["cifar10c"], [0], [1.0], "quick")
    large = expand_grid(["erm"], ["waterbirds"], [0], None, "quick")
    assert (jobs_per_gpu(small), jobs_per_gpu(cifar), jobs_per_gpu(small + cifar + large)) == (8, 2, 1)
    workers, devices = _local_workers(None, "cpu", per_gpu=8)  # no packing on the CPU
    assert devices == ["cpu"] and workers >= 1


def test_a_method_without_a_quick_budget_is_refused_at_budget_quick(monkeypatch):
    """Without budgets.quick, --budget quick would silently run the paper's step counts."""
    import benchmark.config as config

    real = config.load_yaml
    monkeypatch.setattr(config, "load_yaml", lambda path: {k: v for k, v in real(path).items() if k != "budgets"})
    assert method_hparams("erm", "cmnist", "paper")["steps"] == 23500
    with pytest.raises(BenchError, match=r"method erm has no budgets.quick section: add one to .*erm.yaml"):
        method_hparams("erm", "cmnist", "quick")
