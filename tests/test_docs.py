"""The documentation site builds with --strict (no broken link, anchor or page left out of the
navigation), its pages show the repository's real files, and the README's links resolve."""
import html
import re
import subprocess
import sys

import pytest

from tests.helpers import ROOT

pytest.importorskip("mkdocs")
INCLUDE = re.compile(r"^<!-- include -->\[[^\]]*\]\(([^)\s]+)\)$", re.MULTILINE)


def _build(project, site):
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(project / "mkdocs.yml"), "-d", str(site)],
                          capture_output=True, text=True, timeout=300, cwd=project)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    done = _build(ROOT, out)
    assert done.returncode == 0, done.stderr
    return out


def test_every_included_file_appears_whole_in_its_built_page(site):
    pages = {p: [(p.parent / link).resolve() for link in INCLUDE.findall(p.read_text())] for p in (ROOT / "docs").rglob("*.md")}
    assert ROOT / "examples/plugin/debiasbench_example/focal.py" in pages[ROOT / "docs" / "writing-a-method.md"]
    for page, includes in pages.items():
        built = (site / page.relative_to(ROOT / "docs").with_suffix("") / "index.html") if page.stem != "index" else site / "index.html"
        text = html.unescape(built.read_text())
        assert "<!-- include" not in text
        for path in includes:
            for line in path.read_text().splitlines():
                assert line.strip() in text, f"{page.name}: line of {path} missing: {line!r}"


def test_figures_from_the_reference_results_are_copied_into_the_site(site):
    built = (site / "reproduction" / "suite-cmnist" / "index.html").read_text()
    src = re.search(r'src="([^"]*ratio_cmnist\.png)"', built).group(1)
    assert (site / "reproduction" / "suite-cmnist" / src).resolve().is_file()


def test_a_missing_include_or_a_broken_link_fails_the_build(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "mkdocs.yml").write_text(f"site_name: t\nhooks: [{ROOT / 'docs' / 'hooks.py'}]\n")
    (tmp_path / "docs" / "index.md").write_text("# t\n\n<!-- include -->[x](../nowhere.py)\n")
    done = _build(tmp_path, tmp_path / "site")
    assert done.returncode != 0 and "link ../nowhere.py is not a file of the repository" in done.stderr + done.stdout
    (tmp_path / "docs" / "index.md").write_text("# t\n\n[gone](gone.md)\n")
    assert _build(tmp_path, tmp_path / "site").returncode != 0
    (tmp_path / "code.py").write_text("answer = 42\n")
    (tmp_path / "docs" / "index.md").write_text("# t\n\n<!-- include -->[the code](../code.py)\n\n[link](../code.py)\n")
    assert _build(tmp_path, tmp_path / "site").returncode == 0
    built = (tmp_path / "site" / "index.html").read_text()
    assert "answer = 42" in built and 'href="repo/code.py"' in built and (tmp_path / "site" / "repo" / "code.py").is_file()


def test_the_readme_links_resolve_and_reach_every_docs_page():
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    local = [link for link in links if "://" not in link]
    missing = [link for link in local if not (ROOT / link).exists()]
    assert not missing, missing
    pages = {p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md") if p.name != "index.md"}
    assert pages - set(local) == set(), "docs pages the README does not link"
    assert len(readme.splitlines()) < 200, "the README is one page: move detail to docs/"
