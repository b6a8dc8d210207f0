"""DebiasBench: one harness, one registry of methods and datasets, one runner."""

__version__ = "0.1.0"

# Bump when the meaning or layout of a stored result changes: it is part of every job id,
# so results of an older format are never mixed with new ones.
RESULT_FORMAT_VERSION = 1
