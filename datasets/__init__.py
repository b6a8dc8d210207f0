"""DebiasBench datasets: a registry of loaders that all return a `BiasedData`.

This top-level package is named `datasets`, like Hugging Face's `datasets`. Code in `benchmark/`
imports it through `benchmark.imports.datasets_package()`, which refuses a foreign package.
"""
from datasets.base import DATASETS, BiasedData, DataInfo, Split, load, register_dataset

__debiasbench__ = True

# Importing each loader module registers it.
from datasets import bffhq, celeba, cifar10c, cifar10c_disent, cmnist, cmnist_disent, isic, synthetic, waterbirds  # noqa: E402,F401

# Then the datasets of installed plugin packages (entry points `debiasbench.datasets`).
from benchmark.plugins import load_plugins  # noqa: E402

load_plugins("datasets")

__all__ = ["DATASETS", "BiasedData", "DataInfo", "Split", "load", "register_dataset"]
