"""The README and the documentation site: the README is short and every link in it
resolves; every ``complex-synapses`` command line in them parses with the command's own
parser, and runs here (in a temporary folder, on the embedded digits) unless its block
is marked ``<!-- shown, not run -->`` because it takes minutes or a cluster; the numbers
a page shows after a command that runs are the ones it prints; every ``make`` target
exists. (Their Python blocks run as tests of their own, through Sybil: see the
repository's conftest.py.) Lines of other programs (pip, ray, git, python scripts of
studies) are shown only."""

import math
import re
import shlex
from pathlib import Path

import pytest
import torch

from complex_synapses.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```", re.M | re.S)
LINK = re.compile(r"\]\(([^)\s]+)\)")
SHOWN = "<!-- shown, not run"
NUMBER = re.compile(r"-?\d+\.\d+")


def shell_blocks(page: Path) -> list[tuple[list[list[str]], bool, str]]:
    """The shell blocks of a page (fences with no language, or console / bash / sh):
    their command lines (continuation lines joined, comments removed), whether the block
    is marked shown-only, and the page's text after the block up to the next fence."""
    text = page.read_text()
    out = []
    for m in FENCE.finditer(text):
        lang, body = m.group(1), m.group(2)
        if lang not in ("", "console", "bash", "sh", "shell"):
            continue
        lines = []
        for line in body.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            words = shlex.split(line, comments=True) if line else []
            if words:
                lines.append(words)
        shown = text[: m.start()].rstrip().endswith("-->") and SHOWN in text[: m.start()].rstrip()[-200:]
        after = text[m.end() :].split("```", 1)[0]
        out.append((lines, shown, after))
    return out


def shell_lines(page: Path) -> list[list[str]]:
    return [words for lines, _, _ in shell_blocks(page) for words in lines]


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


def shown_output(after: str) -> list[str]:
    """The numbers of the indented block (the output a page shows) right after a command."""
    block = []
    for line in after.lstrip("\n").splitlines():
        if line.startswith("    ") or (block and not line.strip()):
            block.append(line)
        else:
            break
    return [n for line in block if "%" in line or "SEM" in line for n in NUMBER.findall(line)]


def runnable() -> list:
    return [
        pytest.param(
            words[1:],
            shown_output(after) if words is lines[-1] else [],
            id=f"{page.name}: {' '.join(words)[:70]}",
        )
        for page in PAGES
        for lines, shown, after in shell_blocks(page)
        if not shown
        for words in lines
        if words[0] == "complex-synapses"
    ]


@pytest.mark.parametrize("argv,numbers", runnable())
def test_every_command_not_marked_shown_runs_and_prints_what_the_page_shows(
    argv, numbers, tmp_path, monkeypatch, capsys
):
    """In a fresh folder, on one thread (the tutorial's outputs were made so; the thread
    count changes the last bits of float sums)."""
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code = main(list(argv))
    except SystemExit as exc:  # --help
        code = exc.code
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert code == 0, f"complex-synapses {' '.join(argv)}"
    printed = NUMBER.findall(out)
    missing = [n for n in numbers if not near(n, printed)]
    assert not missing, f"the page shows {missing}, the command printed:\n{out[-2000:]}"


def near(shown: str, printed: list[str]) -> bool:
    """Whether a number a page shows was printed: exactly where the CPU is the one the page
    was made on; elsewhere its kernels sum floats in another order, which moves the last
    digits (a 3-task run of the tutorial: 54.87% on the machine that made the page, 54.81%
    on an AVX-512 one, the page's own commit alike): within 0.3 of a printed number, or 2%
    of it where the number is under 15 (standard errors, p-values)."""
    a, tol = float(shown), 0.3 if float(shown) >= 15 else 0.0
    return any(shown == b or math.isclose(a, float(b), rel_tol=0.02, abs_tol=tol) for b in printed)


def test_the_tutorial_runs_its_commands_and_checks_their_numbers():
    """The tutorial's commands are not shown-only, and each shows what it prints."""
    steps = [p for p in runnable() if p.id.startswith("tutorial.md")]
    assert len(steps) >= 3 and all(p.values[1] for p in steps)


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


def test_the_result_files_page_names_every_key_a_run_writes_and_every_study_column(tmp_path, capsys):
    """docs/results.md against a real result (with the optional keys: validation,
    relearning) and the registered study's CSV header."""
    import csv
    import json

    page = (ROOT / "docs" / "results.md").read_text()
    named = set(re.findall(r"`([\w.-]+)`", page))
    argv = ["run", "--dataset", "digits", "--iters", "5", "--tasks", "2", "--validation", "0.1"]
    argv += ["--rounds", "2", "--no-gpus", "--results-dir", str(tmp_path), "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    keys = set(result) | set(result["accuracy"]) | set(result["curves"]) | set(result["versions"])
    keys |= set(result["relearning"]) | set(result["validation"])
    assert keys - named == set()
    with open(ROOT / "docs" / "results" / "study.csv") as f:
        columns = next(csv.reader(f))
    assert set(columns) - named == set()
