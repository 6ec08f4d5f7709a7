"""The README and the documentation site: the README is short and every link in it
resolves; every ``complex-synapses`` command line in them parses with the command's own
parser and every ``make`` target exists. (Their Python
blocks run as tests of their own, through Sybil: see the repository's conftest.py.)"""

import re
import shlex
from pathlib import Path

import pytest

from complex_synapses.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```", re.M | re.S)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def shell_lines(page: Path) -> list[str]:
    """The command lines of a page's shell blocks (fences with no language, or
    console / bash / sh), continuation lines joined and comments removed."""
    lines = []
    for lang, body in FENCE.findall(page.read_text()):
        if lang not in ("", "console", "bash", "sh", "shell"):
            continue
        for line in body.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            words = shlex.split(line, comments=True) if line else []
            if words:
                lines.append(words)
    return lines


def commands(prog: str) -> list:
    return [
        pytest.param(words[1:], id=f"{page.name}: {' '.join(words)[:60]}")
        for page in PAGES
        for words in shell_lines(page)
        if words[0] == prog
    ]


def test_the_readme_is_the_short_entry_point():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    assert "make demo" in text and "make test" in text
    assert len(commands("complex-synapses")) >= 3


@pytest.mark.parametrize("argv", commands("complex-synapses"))
def test_every_command_line_parses(argv):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help exits 0 after printing; a bad option exits 2
        assert exc.code == 0 and "--help" in argv, f"complex-synapses {' '.join(argv)}"
        return
    for word in argv:  # a file of the repository that a command reads is there
        if word.endswith(".toml") and "/" in word:
            assert (ROOT / word).is_file(), word
    assert args.command


@pytest.mark.parametrize("argv", commands("make"))
def test_every_make_target_exists(argv):
    makefile = (ROOT / "Makefile").read_text()
    for target in (w for w in argv if "=" not in w):
        assert re.search(rf"^{re.escape(target)}:", makefile, re.M), target


def anchors(page: Path) -> set[str]:
    """The anchors of a Markdown page's headings, as GitHub and MyST make them."""
    out = set()
    for line in page.read_text().splitlines():
        if m := re.match(r"^#{1,6} (.*)", line):
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            out.add(slug)
    return out


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_resolves(page):
    """Relative links name a file of the repository (and a heading of it, after #);
    a web address is not fetched here (no network), only checked to be one."""
    for target in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://")):
            assert re.match(r"https?://[\w.-]+\.\w+(/|$)", target), target
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        assert file.exists(), f"{page.name}: {target}"
        if anchor:
            assert anchor in anchors(file), f"{page.name}: {target}"
