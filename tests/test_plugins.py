"""Methods and datasets from another installed package (entry points), and what a broken plugin prints."""
import os
import shutil
import subprocess
import sys

import pytest

from tests.helpers import ROOT, cli


def _install_example(target):
    """pip-install a copy of examples/plugin into `target` (no dependencies, offline; the copy keeps the
    build's files out of the repository); skip if this Python cannot build it."""
    source = target.parent / "plugin-source"
    shutil.copytree(ROOT / "examples" / "plugin", source)
    base = [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target), str(source)]
    for extra in (["--no-build-isolation"], []):
        done = subprocess.run(base + extra, capture_output=True, text=True, timeout=300)
        if done.returncode == 0:
            return
    pytest.skip(f"cannot build the example plugin here: {done.stderr.strip().splitlines()[-1:]}")


def test_the_example_plugin_registers_its_method_and_dataset_and_runs(tmp_path):
    _install_example(tmp_path / "site")
    env = {"PYTHONPATH": str(tmp_path / "site")}
    listing = cli("--list", env=env)
    assert listing.returncode == 0, listing.stderr
    lines = [line for line in listing.stdout.splitlines() if "[plugin debiasbench_example]" in line]
    assert [line.split()[0] for line in lines] == ["focal", "stripes"]
    run = cli("--methods", "focal", "erm", "--datasets", "stripes", "--budget", "quick", "--seeds", "0", "--conflict-pcts", "2",
              "--results-dir", str(tmp_path / "r"), "--no-progress", env=env)
    assert run.returncode == 0, run.stderr
    assert [line.split()[2] for line in run.stdout.splitlines() if line.startswith("stripes ")] == ["erm", "focal"]
    assert "focal" not in cli("--list").stdout  # not installed: not there
    script = ("from benchmark import api\n"
              "jobs = api.grid(['focal'], ['stripes'], seeds=[1], conflict_pcts=[2], budget='quick', sets={'focal.gamma': [0.5, 2.0]})\n"
              f"api.run(jobs, {str(tmp_path / 'r')!r}, device='cpu')\n"
              f"df = api.load({str(tmp_path / 'r')!r}).frame()\n"
              "print(sorted(df[df.method == 'focal']['hp.gamma'].tolist()))\n")
    through_api = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT,
                                 env={**os.environ, "PYTHONPATH": f"{tmp_path / 'site'}{os.pathsep}{ROOT}"})
    assert through_api.returncode == 0, through_api.stderr
    assert through_api.stdout.strip() == "[0.5, 2.0, 2.0]"  # seed 0 from the CLI run, seeds 1 of both settings from the API


def _fake_distribution(site, module_source=None):
    """An installed distribution whose entry point names `plugged` (a module with `module_source`, or none)."""
    site.mkdir()
    info = site / "fake_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[debiasbench.methods]\nplugged = plugged\n")
    if module_source is not None:
        (site / "plugged.py").write_text(module_source)


def test_a_plugin_that_fails_to_import_is_one_clear_line(tmp_path):
    _fake_distribution(tmp_path / "site")
    run = cli("--list", env={"PYTHONPATH": str(tmp_path / "site")})
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert "plugin 'plugged' of fake-plugin (entry point debiasbench.methods: plugged) failed to load: ModuleNotFoundError" in run.stderr


def test_a_plugin_method_without_its_yaml_is_one_clear_line(tmp_path):
    source = ("from methods import register_method\nfrom methods.erm import ERM\n\n"
              "@register_method('noyaml')\nclass NoYaml(ERM):\n    \"\"\"A plugin that forgot its YAML.\"\"\"\n")
    _fake_distribution(tmp_path / "site", source)
    run = cli("--list", env={"PYTHONPATH": str(tmp_path / "site")})
    assert run.returncode == 2 and run.stderr.count("\n") == 1
    assert "method 'noyaml' has no config: add" in run.stderr and "noyaml.yaml (beside its module" in run.stderr
