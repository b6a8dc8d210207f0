#!/usr/bin/env python
"""DebiasBench entry point: `python run_bench.py --methods erm --datasets cmnist` (see README)."""
import sys


def entry() -> int:
    try:
        from benchmark.cli import main
    except ImportError as e:
        print(f"error: cannot import DebiasBench ({e}); install it with `pip install -e .` from the repository root", file=sys.stderr)
        return 2
    return main()


if __name__ == "__main__":
    sys.exit(entry())
