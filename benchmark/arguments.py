"""The argument parser of every command: a bad flag is one BenchError line, never argparse's exit."""
from __future__ import annotations

import argparse

from benchmark.errors import BenchError


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports bad flags as BenchError (one line) instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise BenchError(f"{message} (see {self.prog} --help)")
