"""DebiasBench methods: a registry filled by `@register_method` when this package is imported."""
from methods.base import Batch, Method, Stage, TrainSet
from methods.registry import METHODS, build, register_method

__debiasbench__ = True

# Importing each method module registers it.
from methods import dcwp, denetdm, dfr, disent, erm, groupdro, jtt, lc, lff, prusc  # noqa: E402,F401

# Then the methods of installed plugin packages (entry points `debiasbench.methods`).
from benchmark.plugins import load_plugins  # noqa: E402

load_plugins("methods")

__all__ = ["METHODS", "Batch", "Method", "Stage", "TrainSet", "build", "register_method"]
