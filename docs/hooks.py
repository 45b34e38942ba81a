"""MkDocs hook: the repository's figures/ folder becomes part of the site.

A page links a figure by its path in the repository, relative to the page
(`../figures/NAME.png` from docs/), so the link works where the Markdown is read as files (a
code host, an editor). The site mounts the PNGs at `figures/NAME.png` under its root, and each
such link is rewritten to that mounted path before MkDocs resolves it: one rule for every
page, generated ones included, and the PNG `initmap figures` writes is the one shown."""

import re
from pathlib import Path

from mkdocs.structure.files import File

REPO = Path(__file__).resolve().parents[1]
FIGURES = REPO / "figures"
# a Markdown link or an HTML src/href whose relative path climbs out of docs/ into figures/
LINK = re.compile(r"(\]\(|(?:src|href)=\")((?:\.\./)+)figures/")


def on_files(files, config):
    for png in sorted(FIGURES.glob("*.png")):
        files.append(File(f"figures/{png.name}", src_dir=str(REPO),
                          dest_dir=config["site_dir"],
                          use_directory_urls=config["use_directory_urls"]))
    return files


def on_page_markdown(markdown, page, config, files):
    depth = page.file.src_uri.count("/")  # folders between docs/ and the page

    def mounted(match):
        ups = match.group(2).count("../")
        return match.group(1) + "../" * depth + "figures/" if ups == depth + 1 else match.group(0)

    return LINK.sub(mounted, markdown)
