"""MkDocs hooks: pages show real repository files, so they cannot drift from the code.

- `<!-- include: PATH -->` on a line of its own becomes a fenced code block with the file at PATH
  (relative to the repository root), headed by its path; a missing file fails the build.
- An image whose relative link leaves `docs/` for a file of the repository (the committed figures in
  `results/reference/plots/`) is copied into the site under `repo/` and its link rewritten, so the same
  Markdown shows the figure on GitHub and on the site.
"""
from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

INCLUDE = re.compile(r"^<!-- include: (\S+) -->$", re.MULTILINE)
IMAGE = re.compile(r"(!\[[^\]]*\]\()([^)\s]+)(\))")
LANGUAGES = {".py": "python", ".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".cfg": "ini", ".sh": "bash"}


def _repo_root(config) -> Path:
    return Path(config.config_file_path).resolve().parent


def _outside_image(page_src: Path, link: str, docs: Path, root: Path) -> Path | None:
    """The repository file an image link names when it leaves docs/, else None."""
    if "://" in link or link.startswith("/"):
        return None
    target = (page_src.parent / link).resolve()
    if target.is_relative_to(docs) or not target.is_relative_to(root):
        return None
    if not target.is_file():
        raise PluginError(f"{page_src.name}: image {link} does not exist")
    return target


def on_files(files, config):
    docs, root = Path(config.docs_dir).resolve(), _repo_root(config)
    added: set[str] = set()
    for page in list(files.documentation_pages()):
        for _, link, _ in IMAGE.findall(Path(page.abs_src_path).read_text(encoding="utf-8")):
            target = _outside_image(Path(page.abs_src_path), link, docs, root)
            uri = target and "repo/" + target.relative_to(root).as_posix()
            if uri and uri not in added:
                files.append(File.generated(config, uri, abs_src_path=str(target)))
                added.add(uri)
    return files


def on_page_markdown(markdown, page, config, files):
    docs, root = Path(config.docs_dir).resolve(), _repo_root(config)
    page_src = Path(page.file.abs_src_path)

    def include(match: re.Match) -> str:
        path = (root / match.group(1)).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise PluginError(f"{page.file.src_uri}: include {match.group(1)} is not a file of the repository")
        fence = "```" + LANGUAGES.get(path.suffix, "")
        return f"`{match.group(1)}`:\n\n{fence}\n{path.read_text(encoding='utf-8').rstrip()}\n```"

    def image(match: re.Match) -> str:
        target = _outside_image(page_src, match.group(2), docs, root)
        if target is None:
            return match.group(0)
        uri = "repo/" + target.relative_to(root).as_posix()
        return match.group(1) + posixpath.relpath(uri, posixpath.dirname(page.file.src_uri) or ".") + match.group(3)

    return IMAGE.sub(image, INCLUDE.sub(include, markdown))
