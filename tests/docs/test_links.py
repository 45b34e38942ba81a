"""Every image and relative link of README.md and docs/ resolves where a reader meets it: on
disk, as a code host shows the Markdown files, and in the site `mkdocs build --strict` makes
(built once here, with every warning an error, as CI builds it)."""

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# [text](target) and ![alt](target), the target up to a space (a title) or the closing paren
MARKDOWN_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)


def relative_targets(text: str) -> list[str]:
    """Link targets that name a file of the repository (no scheme, no bare #anchor)."""
    text = FENCE.sub("", text)
    text = re.sub(r"`[^`\n]*`", "", text)
    targets = [m.group(1) for m in MARKDOWN_LINK.finditer(text)]
    return [t for t in targets if not urlsplit(t).scheme and not t.startswith(("#", "mailto:"))]


def test_the_pages_link_something():
    assert sum(len(relative_targets(p.read_text())) for p in PAGES) > 20


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve_on_disk(page):
    missing = [t for t in relative_targets(page.read_text())
               if not (page.parent / unquote(urlsplit(t).path)).exists()]
    assert not missing, f"{page.relative_to(ROOT)} links files that do not exist: {missing}"


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value and (tag, name) in (("img", "src"), ("a", "href")):
                self.links.append(value)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                           "--site-dir", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_the_site_builds_strictly_and_every_link_in_it_resolves(site):
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= len(list((ROOT / "docs").rglob("*.md")))
    images = 0
    for page in pages:
        parser = _Links()
        parser.feed(page.read_text())
        for link in parser.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or not parts.path:
                continue
            base = site if parts.path.startswith("/") else page.parent  # 404.html's are absolute
            target = (base / unquote(parts.path).lstrip("/")).resolve()
            if link.endswith("/") or target.is_dir():
                target = target / "index.html"
            assert target.is_file(), f"{page.relative_to(site)} links {link}: not in the site"
            images += target.suffix == ".png"
    assert images >= 15  # the figures page's and the how-to pages' figures are there
    assert not (site / "figures.md.in").exists()  # the template is not published
