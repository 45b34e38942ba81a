"""MkDocs hook: the figures in the repository's figures/ folder become part of the site, so a
page links `figures/NAME.png` and the PNG `initmap figures` writes is the one shown."""

from pathlib import Path

from mkdocs.structure.files import File

FIGURES = Path(__file__).resolve().parents[1] / "figures"


def on_files(files, config):
    for png in sorted(FIGURES.glob("*.png")):
        files.append(File(f"figures/{png.name}", src_dir=str(FIGURES.parent),
                          dest_dir=config["site_dir"],
                          use_directory_urls=config["use_directory_urls"]))
    return files
