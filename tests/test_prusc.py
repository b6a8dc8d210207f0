"""PruSC on hand-sized inputs and on the synthetic fixture: its contrastive loss and gradient by
hand, k-means on planted clusters, clusters that follow the bias, every stage, and a worst-group
gain over ERM that disappears without the contrastive term."""
import math

import pytest
import torch

import datasets
from benchmark.config import method_hparams
from benchmark.training.harness import Harness, seed_everything
from benchmark.selection import select_all
from methods import build
from methods.base import Batch
from methods.clustering import cosine_kmeans


@pytest.fixture(scope="module")
def biased():
    return datasets.load("synthetic", 1.0)


def _prusc(data, **overrides):
    hp = method_hparams("prusc", "synthetic", "paper")
    hp.update(overrides)
    return build("prusc", data.info, hp, torch.device("cpu")), hp


def _hand_task_loss(z, y, cluster, t):
    """L_task summed over anchors, written as the formula: positives same class / other cluster,
    negatives same cluster, anchor excluded, anchors lacking either skipped."""
    unit = [[v / math.sqrt(sum(w * w for w in row)) for v in row] for row in z]
    sim = [[sum(a * b for a, b in zip(unit[i], unit[j])) / t for j in range(len(z))] for i in range(len(z))]
    total = 0.0
    for i in range(len(z)):
        pos = [j for j in range(len(z)) if j != i and y[j] == y[i] and cluster[j] != cluster[i]]
        neg = [j for j in range(len(z)) if j != i and cluster[j] == cluster[i]]
        if not pos or not neg:
            continue
        denominator = sum(math.exp(sim[i][j]) for j in pos + neg)
        total += -sum(math.log(math.exp(sim[i][p]) / denominator) for p in pos) / len(pos)
    return total


def test_task_loss_and_its_gradient_match_a_hand_computation(synthetic):
    m, hp = _prusc(synthetic, contrastive_reduction="sum", temperature=0.5)
    y = torch.tensor([0, 0, 0, 1, 1, 2])
    cluster = torch.tensor([0, 1, 0, 1, 0, 2])  # sample 5 has neither positive nor negative
    index = torch.arange(6)
    m.clusters = torch.zeros(synthetic.info.train_size, dtype=torch.long)
    m.clusters[index] = cluster
    z = torch.tensor([[1.0, 0.2, 0.0], [0.1, 1.0, 0.3], [0.5, 0.5, 0.1], [0.0, 0.3, 1.0], [0.9, 0.0, 0.4], [0.2, 0.2, 0.2]],
                     dtype=torch.float64, requires_grad=True)
    loss = m.task_loss(z, Batch(torch.zeros(6), y, index))
    loss.backward()
    rows = z.detach().tolist()
    assert loss.item() == pytest.approx(_hand_task_loss(rows, y.tolist(), cluster.tolist(), 0.5), rel=1e-6)  # the loss runs in float32
    eps = 1e-6
    for i in range(6):
        for d in range(3):
            up = [r[:] for r in rows]
            down = [r[:] for r in rows]
            up[i][d] += eps
            down[i][d] -= eps
            numeric = (_hand_task_loss(up, y.tolist(), cluster.tolist(), 0.5) - _hand_task_loss(down, y.tolist(), cluster.tolist(), 0.5)) / (2 * eps)
            assert z.grad[i, d].item() == pytest.approx(numeric, abs=1e-4)
    assert z.grad[:5].abs().sum() > 0.1
    assert torch.all(z.grad[5] == 0)


def test_kmeans_recovers_planted_clusters():
    g = torch.Generator().manual_seed(0)
    directions = torch.eye(8)[:4] * 5
    planted = torch.arange(400) % 4
    x = directions[planted] + torch.randn(400, 8, generator=g) * 0.5
    found = cosine_kmeans(x, 4, torch.Generator().manual_seed(1))
    pairs = {(int(a), int(b)) for a, b in zip(found, planted)}
    assert len(pairs) == 4 and len({a for a, _ in pairs}) == 4
    again = cosine_kmeans(x, 4, torch.Generator().manual_seed(1))
    assert torch.equal(found, again)


def _run(data, seed, **overrides):
    seed_everything(seed)
    m, hp = _prusc(data, **overrides)
    return m, Harness(m, data, seed, eval_every=hp["eval_every"]).run()


def _worst_group(result, stage):
    entries = [e for e in result.curve if e["stage"] == stage]
    return 100 * select_all(entries, result.group_total, result.aligned, stage)["last"]["test"]["worst_group_acc"]


def _mean_gain(data, **overrides):
    """Mean over seeds of PruSC's final worst-group accuracy minus its own ERM stage's; the cluster purity."""
    gains, purity = [], []
    for seed in (0, 1):
        _, result = _run(data, seed, **overrides)
        gains.append(_worst_group(result, "finetune") - _worst_group(result, "erm"))
        purity.append(result.diagnostics["cluster"]["clusters"]["bias_purity"])
        assert set(result.timings) == {"erm", "cluster", "prune", "finetune"}
        assert 0 <= result.sparsity["overall"] <= 1
        assert result.artifacts["cluster.clusters"].shape == (data.info.train_size,)
    return sum(gains) / 2, min(purity)


def test_prusc_beats_its_erm_network_on_the_worst_group_and_not_without_l_task(biased):
    gain, purity = _mean_gain(biased)
    assert purity > 0.9, f"clusters follow the bias only {purity:.2f} of the time (chance 0.25)"
    assert gain > 15, f"PruSC gains only {gain:.1f} points of worst-group accuracy over ERM"
    ablated, _ = _mean_gain(biased, lambda_con_prune=0.0)
    assert ablated < 10, f"without L_task PruSC still gains {ablated:.1f} points"


def test_an_ablation_over_clustering_and_pruning_settings_trains_erm_once_and_matches_unshared_runs(tmp_path):
    from benchmark.config import parse_sets
    from benchmark.grid.jobs import expand_grid
    from benchmark.grid.runner import run_grid, runtime_options
    from benchmark.grid.store import Store

    sets = parse_sets(["prusc.clusters=4,8", "prusc.lambda_sparse=1e-8,1e-3"])
    jobs = expand_grid(["prusc"], ["synthetic"], [0], [1], "quick", sets)
    runtime = runtime_options("cpu", max_stage_steps=20)
    shared = Store(tmp_path / "shared")
    assert run_grid(jobs, shared, runtime, progress=False, announce=False)["done"] == 4
    records = {r["job"]["id"]: r for r in shared.results()}
    assert sorted(r["reused_stages"] for r in records.values()) == [[]] + [["erm"]] * 3
    for job in jobs[1:]:
        alone = Store(tmp_path / job.id)
        run_grid([job], alone, runtime, progress=False, announce=False)
        expected, got = alone.results()[0], records[job.id]
        assert got["curve"] == expected["curve"] and got["sparsity"] == expected["sparsity"]
        assert got["diagnostics"]["cluster"] == expected["diagnostics"]["cluster"]
    other = expand_grid(["prusc"], ["synthetic"], [0], [1], "quick", parse_sets(["prusc.cluster_at_step=50"]))
    run_grid(other, shared, runtime, progress=False, announce=False)
    assert Store(tmp_path / "shared").results() and [r["reused_stages"] for r in shared.results()
                                                     if r["job"]["id"] == other[0].id] == [[]]
