"""User-facing errors: one line that says what is wrong and how to fix it."""


class BenchError(Exception):
    """A problem with the user's input or environment, reported as one line (no traceback)."""


class NonFiniteLossError(BenchError):
    """A training loss became NaN or infinite; the job fails, its reason goes to the store."""
