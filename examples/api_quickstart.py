"""DebiasBench from Python, start to finish, in the time a notebook cell takes (about a minute on 2 CPU cores).

    python examples/api_quickstart.py [RESULTS_DIR]

Runs ERM and LfF on the tiny synthetic fixture (shapes as the target, colours as the bias) over two
seeds at the smoke-test budget, then prints a tidy DataFrame of the runs, the suite's table, and
the path of a figure (accuracy during training). Every step is one call of `benchmark.api`.
"""
import sys
from pathlib import Path

from benchmark import api


def main(results_dir: str) -> None:
    jobs = api.grid(methods=["erm", "lff"], datasets=["synthetic"], seeds=[0, 1], budget="quick")
    print(api.describe(jobs, results_dir))                       # what will run, what is stored
    summary = api.run(jobs, results_dir, device="cpu")            # resumable: run it twice, the second does nothing
    print(f"ran {summary['done']}, found {summary['skipped']} stored, {len(summary['failed'])} failed")

    results = api.load(results_dir)
    df = results.frame()                                          # one row per run, every setting its own column
    cols = ["method", "seed", "hp.optimizer.lr", "unbiased_acc", "worst_group_acc", "conflicting_acc", "steps"]
    print(df[cols].sort_values(["method", "seed"]).to_string(index=False))
    print(df.groupby("method")[["unbiased_acc", "conflicting_acc"]].mean().round(2))

    print(results.table(fmt="markdown"))                          # the table the command line prints
    for path in results.plot("curves", Path(results_dir) / "plots"):
        print("figure:", path)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/api-quickstart")
