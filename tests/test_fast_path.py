"""The GPU fast path: seeds run together in one process, and CUDA-graph steps.

On the CPU, seeds run together must end exactly as their separate runs. The CUDA-graph tests
need a GPU and are skipped without one: a graph-replayed run must match its eager run.
"""
import json

import pytest
import torch

from benchmark.training.harness import Harness, RuntimeOptions, run_together
from benchmark.grid.jobs import expand_grid
from benchmark.grid.runner import run_grid, runtime_options, seed_groups
from benchmark.grid.store import Store
from tests.helpers import harness, params


def cuda(test):
    """A GPU-only test: marked `cuda` (`pytest -m cuda` runs these alone) and skipped without a GPU."""
    return pytest.mark.cuda(pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")(test))


def _harness(method: str, data, seed: int, device: str = "cpu", steps: int = 30, hparams: dict | None = None,
             **runtime) -> Harness:
    """The tests' run: `steps` per stage, evaluated every 15."""
    return harness(method, data, seed, runtime=RuntimeOptions(max_stage_steps=steps, **runtime), device=device,
                   eval_every=15, **(hparams or {}))


def _params(h: Harness) -> torch.Tensor:
    return params(h.method)


@pytest.mark.parametrize("method", ["erm", "lff", "dcwp", "disent"])
def test_seeds_run_together_end_exactly_as_their_separate_runs(synthetic, method):
    separate = []
    for seed in (0, 1):
        h = _harness(method, synthetic, seed)
        separate.append((h.run(), _params(h)))
    together = [_harness(method, synthetic, seed) for seed in (0, 1)]
    results = run_together(together)
    for (alone, weights), result, h in zip(separate, results, together):
        assert result.curve == alone.curve
        assert torch.equal(_params(h), weights)
    assert separate[0][0].curve != separate[1][0].curve  # the seeds differ, so the check can fail


def test_a_failing_seed_stops_alone(synthetic):
    together = [_harness("erm", synthetic, seed) for seed in (0, 1)]
    broken = together[1].stages[0]

    def crash(batch):
        raise RuntimeError("boom")
    broken.loss = crash
    results = run_together(together)
    assert isinstance(results[1], RuntimeError)
    assert results[0].curve and results[0].curve[-1]["step"] == 30


def test_the_runner_stores_seeds_run_together_as_separate_runs(tmp_path):
    jobs = expand_grid(["lff"], ["synthetic"], [0, 1, 2], [5.0], "quick", {}, None)
    assert [len(g) for g in seed_groups(jobs, 2)] == [2, 1]
    assert [len(g) for g in seed_groups(jobs, 0)] == [1, 1, 1]  # a size below 1 still runs every job
    runtime = runtime_options("cpu", max_stage_steps=20)
    stored = {}
    for name, together in (("separate", 1), ("together", 2)):
        store = Store(tmp_path / name)
        summary = run_grid(jobs, store, runtime, progress=False, announce=False, seeds_together=together)
        assert summary["done"] == 3 and not summary["failed"]
        stored[name] = {r["job"]["id"]: r for r in store.results()}
    assert stored["separate"].keys() == stored["together"].keys()
    for job_id, record in stored["separate"].items():
        other = stored["together"][job_id]
        assert json.dumps(record["metrics"], sort_keys=True) == json.dumps(other["metrics"], sort_keys=True)
        assert record["curve"] == other["curve"]


# What must match between a graphed and an eager run: all weights where every step is
# deterministic; DCWP's and PruSC's mask stages draw Gumbel noise, whose draws differ inside a
# graph (same distribution), so there only DCWP's miner (stage 1, no noise) must match.
GRAPH_CASES = {"erm": ("erm", {}, None), "lff": ("lff", {}, None), "denetdm": ("denetdm", {}, None),
               "disent": ("disent", {"swap_start": 1000}, None), "disent-swap": ("disent", {"swap_start": 5}, ()),
               "dcwp": ("dcwp", {}, "miner"), "prusc": ("prusc", {}, ())}


@cuda
@pytest.mark.parametrize("case", sorted(GRAPH_CASES))
def test_cuda_graph_steps_match_eager_steps(synthetic, case):
    method, overrides, compare = GRAPH_CASES[case]
    runs = {}
    for graphs in ("off", "auto"):
        h = _harness(method, synthetic, 0, "cuda", steps=40, hparams=overrides, cuda_graphs=graphs)
        runs[graphs] = (h, h.run())
    result = runs["auto"][1]
    assert sum(t.get("graph_steps", 0) for t in result.timings.values()) > 0, result.timings
    assert not any("capture_failed" in t for t in result.timings.values()), result.timings
    if compare == ():
        return
    eager, graphed = (runs[k][0].method.models for k in ("off", "auto"))
    if compare is not None:
        eager, graphed = eager[compare], graphed[compare]
    for (name, a), b in zip(eager.named_parameters(), graphed.parameters()):
        torch.testing.assert_close(b, a, rtol=1e-2, atol=1e-3, msg=lambda text: f"{name}: {text}")


@cuda
def test_seeds_run_together_on_a_gpu_with_graphs(synthetic):
    together = [_harness("lff", synthetic, seed, "cuda", steps=40) for seed in (0, 1, 2)]
    results = run_together(together)
    for seed, result in enumerate(results):
        assert not isinstance(result, Exception), result
        alone = _harness("lff", synthetic, seed, "cuda", steps=40)
        alone.run()
        torch.testing.assert_close(_params(together[seed]), _params(alone), rtol=1e-3, atol=1e-4)


def test_a_checkpoint_of_a_captured_optimiser_resumes_uncaptured():
    from benchmark.training.graphs import make_capturable, portable_state

    weight = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.Adam([weight], lr=0.1)
    weight.sum().backward()
    opt.step()
    make_capturable([opt], torch.device("cpu"))  # what a graphed stage does to it on a GPU
    assert isinstance(opt.param_groups[0]["lr"], torch.Tensor) and opt.param_groups[0]["capturable"]
    state = portable_state(opt)
    assert state["param_groups"][0]["lr"] == pytest.approx(0.1) and not state["param_groups"][0]["capturable"]
    fresh = torch.optim.Adam([torch.nn.Parameter(weight.detach().clone())], lr=0.5)
    fresh.load_state_dict(state)
    fresh.param_groups[0]["params"][0].sum().backward()
    fresh.step()  # an uncaptured CPU optimiser steps from it
    assert fresh.param_groups[0]["lr"] == pytest.approx(0.1)


def test_seeds_together_below_one_is_a_one_line_error(tmp_path):
    from tests.helpers import cli

    out = cli("--methods", "erm", "--datasets", "synthetic", "--budget", "quick", "--seeds-together", "0",
              "--results-dir", str(tmp_path / "r"))
    assert out.returncode != 0
    assert out.stderr.strip().splitlines() == ["error: --seeds-together must be 1 or more, got 0"]
