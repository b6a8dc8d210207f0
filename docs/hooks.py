"""MkDocs hooks: pages show and link real repository files, so they cannot drift from the code, and
the same Markdown reads well on GitHub and on the site.

- A line `<!-- include -->[label](relative/path/to/file)` becomes, on the site, a fenced code block
  with that file, headed by its repository path; on GitHub (or in an editor) it is a link to the
  file. A missing file fails the build.
- A relative link or image that leaves `docs/` for a file of the repository (a method's source, a
  committed figure in `results/reference/plots/`) is copied into the site under `repo/` and the
  link rewritten to the copy. A link to a file that does not exist fails the build.
"""
from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

INCLUDE = re.compile(r"^<!-- include -->\[[^\]]*\]\(([^)\s]+)\)$", re.MULTILINE)
LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s#]+)(#[^)\s]*)?(\))")
LANGUAGES = {".py": "python", ".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".cfg": "ini", ".sh": "bash"}


def _repo_root(config) -> Path:
    return Path(config.config_file_path).resolve().parent


def _outside_target(page_src: Path, link: str, docs: Path, root: Path) -> Path | None:
    """The repository file a relative link names when it leaves docs/, else None."""
    if "://" in link or link.startswith(("/", "mailto:")):
        return None
    target = (page_src.parent / link).resolve()
    if target.is_relative_to(docs) or not target.is_relative_to(root):
        return None
    if not target.is_file():
        raise PluginError(f"{page_src.name}: link {link} is not a file of the repository")
    return target


def _uri(target: Path, root: Path) -> str:
    return "repo/" + target.relative_to(root).as_posix()


def on_files(files, config):
    docs, root = Path(config.docs_dir).resolve(), _repo_root(config)
    added: set[str] = set()
    for page in list(files.documentation_pages()):
        for _, link, _, _ in LINK.findall(Path(page.abs_src_path).read_text(encoding="utf-8")):
            target = _outside_target(Path(page.abs_src_path), link, docs, root)
            if target is not None and _uri(target, root) not in added:
                files.append(File.generated(config, _uri(target, root), abs_src_path=str(target)))
                added.add(_uri(target, root))
    return files


def on_page_markdown(markdown, page, config, files):
    docs, root = Path(config.docs_dir).resolve(), _repo_root(config)
    page_src = Path(page.file.abs_src_path)

    def include(match: re.Match) -> str:
        path = (page_src.parent / match.group(1)).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise PluginError(f"{page.file.src_uri}: include {match.group(1)} is not a file of the repository")
        shown = path.relative_to(root).as_posix()
        fence = "```" + LANGUAGES.get(path.suffix, "")
        return f"`{shown}`:\n\n{fence}\n{path.read_text(encoding='utf-8').rstrip()}\n```"

    def link(match: re.Match) -> str:
        target = _outside_target(page_src, match.group(2), docs, root)
        if target is None:
            return match.group(0)
        here = posixpath.dirname(page.file.src_uri) or "."
        return match.group(1) + posixpath.relpath(_uri(target, root), here) + (match.group(3) or "") + match.group(4)

    return LINK.sub(link, INCLUDE.sub(include, markdown))
