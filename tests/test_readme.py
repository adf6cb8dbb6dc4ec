"""The README and the docs pages run as written.

Pages: README.md first, then every ``docs/*.md`` page that has a shell block, in the order the
README first links them (a docs page with shell blocks that the README does not link fails).
Every ```bash / ```sh / ```console block of these pages is a list of commands. They are parsed
and checked (each ``python -m`` command against its real argument parser, ``make`` targets,
scripts), then run from the repository root in that order: the README's blocks top to bottom,
then each page's (a few minutes; later blocks use what ``make demo`` and earlier blocks wrote
under ``work/``). Not run, only checked:

- blocks tagged ``<!-- slow: reason -->`` on the line before the fence. Each file lists its own
  slow blocks, with their reasons, in a section titled "Not run by the tests" (any heading
  level; the README's is under "Tests"): every slow reason must appear in its file's section,
  every item of that section must name the reason of one of the file's slow blocks, and a file
  without slow blocks has no such section;
- the blocks of the pages in ``CHECK_ONLY``, reference pages whose commands illustrate (a
  server that runs until it is stopped, written with the venv's plain ``python``).

A block is named ``path:line (lang)``, the 1-based line of its opening fence. The local links
and images of README.md and of every docs page must exist, relative to the page's folder, and
their anchors must be headings of the page they point to (GitHub's heading slugs).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
SHELL_LANGS = ("bash", "sh", "console")
SLOW_TAG = re.compile(r"^<!--\s*slow:\s*(.+?)\s*-->$")
NOT_RUN_TITLE = "Not run by the tests"
# Pages whose commands are checked against the parsers but never run, with why.
CHECK_ONLY = {
    "docs/protocol.md": "the wire protocol's reference for client writers; its Python examples "
                        "run against a live daemon in tests/test_docs.py",
}
# Where the runnable blocks may write (both ignored by git).
OUTPUT_ROOTS = ("work", "dist")
OUTPUT_FLAGS = ("--out", "--runs")
SHELL_BUILTINS = {"kill", "cd", "export", "sleep", "wait", "echo"}
PACKAGES = ("synth_render", "backend", "blender_addon")


@dataclass
class Block:
    page: str  # the file, relative to the repository root
    lang: str
    code: str
    line: int  # 1-based line of the opening fence
    slow: str | None  # the reason, when tagged slow

    @property
    def runs(self) -> bool:
        return self.slow is None and self.page not in CHECK_ONLY

    def __str__(self) -> str:
        return f"{self.page}:{self.line} ({self.lang})"


def _rel(path: Path) -> str:
    return path.resolve().relative_to(ROOT).as_posix()


def shell_blocks(text: str, page: str) -> list[Block]:
    """Every shell block, with its slow tag (the last non-blank line before the fence)."""
    blocks, lines = [], text.splitlines()
    fence, start, body = None, 0, []
    for i, line in enumerate(lines):
        if fence is None and line.startswith("```"):
            fence, start, body = line[3:].strip(), i, []
        elif fence is not None and line.strip() == "```":
            if fence in SHELL_LANGS:
                before = next((ln.strip() for ln in reversed(lines[:start]) if ln.strip()), "")
                tag = SLOW_TAG.match(before)
                blocks.append(Block(page, fence, "\n".join(body) + "\n", start + 1,
                                    tag.group(1) if tag else None))
            fence = None
        elif fence is not None:
            body.append(line)
    assert fence is None, f"{page} has an unclosed code fence"
    return blocks


def _prose(text: str) -> str:
    """The text with every fenced block blanked out (line numbers kept)."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            out.append("")
        else:
            out.append("" if fenced else line)
    return "\n".join(out)


def local_links(text: str) -> list[str]:
    targets = re.findall(r"\]\(([^)\s]+)\)", _prose(text))
    return [t for t in targets if not t.startswith(("http://", "https://", "mailto:"))]


def anchors(text: str) -> set[str]:
    """GitHub's anchors for the headings: lower case, punctuation dropped, spaces to hyphens,
    ``-1``, ``-2``... on repeats."""
    slugs, counts = set(), {}
    for line in _prose(text).splitlines():
        m = re.match(r"^#{1,6}\s+(.+?)\s*$", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
            n = counts.get(slug, 0)
            counts[slug] = n + 1
            slugs.add(slug if n == 0 else f"{slug}-{n}")
    return slugs


def linked_docs(readme: str) -> list[str]:
    """The docs pages in the order the README first links them."""
    order: list[str] = []
    for target in local_links(readme):
        path = target.split("#")[0]
        if path.startswith("docs/") and path.endswith(".md") and (ROOT / path).is_file():
            rel = _rel(ROOT / path)
            if rel not in order:
                order.append(rel)
    return order


def shell_pages() -> list[str]:
    """README.md, then the linked docs pages that have shell blocks, in running order."""
    pages = ["README.md"]
    for page in linked_docs(README.read_text()):
        if shell_blocks((ROOT / page).read_text(), page):
            pages.append(page)
    return pages


def not_run_section(text: str) -> str | None:
    """The section titled "Not run by the tests", up to the next heading of its level or
    above."""
    lines = _prose(text).splitlines()
    for i, line in enumerate(lines):
        m = re.match(rf"^(#+)\s+{re.escape(NOT_RUN_TITLE)}\s*$", line)
        if m:
            level, body = len(m.group(1)), []
            for later in lines[i + 1:]:
                h = re.match(r"^(#+)\s", later)
                if h and len(h.group(1)) <= level:
                    break
                body.append(later)
            return "\n".join(body)
    return None


def commands(block: Block) -> list[list[str]]:
    """The block's commands as argument lists (continuations joined, comments, prompts,
    output lines, variable assignments and a trailing ``&`` removed)."""
    text = block.code.replace("\\\n", " ")
    cmds = []
    for line in text.splitlines():
        if block.lang == "console":
            if not line.startswith("$ "):
                continue  # program output
            line = line[2:]
        tokens = shlex.split(line, comments=True)
        while tokens and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", tokens[0]):
            tokens.pop(0)
        if tokens and tokens[-1] == "&":
            tokens.pop()
        if tokens:
            cmds.append(tokens)
    return cmds


# ------------------------------------------------------------------------------ checks


def _parser(package: str) -> argparse.ArgumentParser:
    if package == "synth_render":
        from synth_render.cli import build_parser
    elif package == "backend":
        from backend.cli import build_parser
    else:
        from blender_addon.build import _parser as build_parser
    return build_parser()


def _parse(package: str, args: list[str]) -> argparse.Namespace:
    try:
        return _parser(package).parse_args(args)
    except SystemExit as exc:
        raise AssertionError(f"python -m {package} {shlex.join(args)}: rejected by its "
                             f"parser (exit {exc.code})") from None


def _module_call(tokens: list[str]) -> tuple[str, list[str]] | None:
    """``(package, args)`` of ``[.venv/bin/]python -m PKG ...`` or ``torchrun ... -m PKG``."""
    program = Path(tokens[0]).name
    if program in ("python", "python3", "torchrun") and "-m" in tokens:
        i = tokens.index("-m")
        return tokens[i + 1], tokens[i + 2:]
    return None


def check_command(tokens: list[str], block: Block) -> None:
    """The command exists and takes these arguments (nothing is run)."""
    program = tokens[0]
    if program in SHELL_BUILTINS:
        return
    if program == "make":
        makefile = (ROOT / "Makefile").read_text()
        for target in tokens[1:]:
            assert re.search(rf"^{re.escape(target)}:", makefile, re.M), \
                f"{block}: no make target {target!r}"
        return
    if program.startswith((".venv/", "scripts/")) and not _module_call(tokens):
        path = ROOT / program
        assert path.is_file() and os.access(path, os.X_OK), f"{block}: {program} missing"
        return
    call = _module_call(tokens)
    assert call is not None, f"{block}: unknown kind of command {shlex.join(tokens)!r}"
    package, args = call
    assert package in PACKAGES, f"{block}: unknown module {package!r}"
    if Path(program).name == "torchrun":
        assert program.startswith(".venv/bin/"), f"{block}: use .venv/bin/torchrun"
    elif block.page in CHECK_ONLY:
        assert program in (".venv/bin/python", "python", "python3"), f"{block}: {program}?"
    else:
        assert program == ".venv/bin/python", f"{block}: use .venv/bin/python (as written, " \
                                              "without activating the venv)"
    parsed = _parse(package, args)
    if block.runs:
        for flag in OUTPUT_FLAGS:
            value = getattr(parsed, flag.lstrip("-"), None)
            if flag in args and value is not None:
                assert Path(value).parts[0] in OUTPUT_ROOTS, \
                    f"{block}: {flag} {value} writes outside {OUTPUT_ROOTS}"


def _section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else len(text)]


# ------------------------------------------------------------------------------ tests


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text()


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    """The files with shell blocks, in running order, and their text."""
    return {page: (ROOT / page).read_text() for page in shell_pages()}


@pytest.fixture(scope="module")
def blocks(pages) -> list[Block]:
    return [block for page, text in pages.items() for block in shell_blocks(text, page)]


def test_readme_opens_with_a_picture_and_the_two_commands(readme, blocks):
    head = readme.split("\n## ", 1)[0]
    assert re.search(r"!\[[^\]]*\]\(docs/images/\S+\.png\)", head)
    first = [commands(b) for b in blocks[:2]]
    assert [b.page for b in blocks[:2]] == ["README.md"] * 2
    assert first == [[["make", "demo"]], [["make", "test"]]]


def test_readme_is_a_landing_page(readme):
    """The long material lives in docs/ (the README fits on a few screens)."""
    assert len(readme.encode()) < 20_000 and len(readme.splitlines()) < 320
    for heading in ("Results", "Known limits", "Tests"):
        assert _section(readme, heading)


def test_every_docs_page_with_shell_blocks_is_linked_from_the_readme(pages):
    for path in sorted(DOCS.glob("*.md")):
        page = _rel(path)
        if shell_blocks(path.read_text(), page):
            assert page in pages, f"{page} has shell blocks but the README does not link it"


def test_every_command_exists_and_takes_its_flags(blocks):
    assert len(blocks) >= 10
    for block in blocks:
        cmds = commands(block)
        assert cmds, f"{block}: no command"
        for tokens in cmds:
            check_command(tokens, block)


def test_every_slow_block_is_listed_with_its_reason_on_its_page(pages, blocks):
    assert any(b.slow for b in blocks), "no slow blocks: then drop the 'Not run' sections"
    for page, text in pages.items():
        reasons = [" ".join(b.slow.split()) for b in blocks if b.page == page and b.slow]
        section = not_run_section(text)
        if not reasons:
            assert section is None, f"{page}: a {NOT_RUN_TITLE!r} section but no slow block"
            continue
        assert section is not None, f"{page}: slow blocks but no {NOT_RUN_TITLE!r} section"
        listing = " ".join(section.split())
        for block in blocks:
            if block.page == page and block.slow:
                assert " ".join(block.slow.split()) in listing, \
                    f"{block}: slow reason {block.slow!r} missing from {page}'s " \
                    f"{NOT_RUN_TITLE!r} section"
        items = re.findall(r"^- (.+(?:\n +\S.*)*)", section, re.M)
        assert items, f"{page}: its {NOT_RUN_TITLE!r} section lists nothing"
        for item in items:
            item = " ".join(item.split())
            assert any(reason in item for reason in reasons), \
                f"{page}: {item!r} names no slow block of the page"


def test_local_links_anchors_and_images_exist():
    """README.md and every docs page; links relative to the page's folder."""
    checked = 0
    for path in [README, *sorted(DOCS.glob("*.md"))]:
        for target in local_links(path.read_text()):
            file, _, anchor = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            assert dest.exists(), f"{_rel(path)}: link to missing {target}"
            if anchor and dest.suffix == ".md":
                assert anchor in anchors(dest.read_text()), \
                    f"{_rel(path)}: no heading for the anchor in {target}"
            checked += 1
    assert checked


def test_entry_points_answer_help():
    """``python -m <package> --help`` exits 0 (the ``__main__`` modules are wired)."""
    for package in PACKAGES:
        proc = subprocess.run([sys.executable, "-m", package, "--help"], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr


@pytest.mark.blender
def test_fast_blocks_run_as_written(blocks):
    """Each block that runs, in order, from the repository root (what a new user does)."""
    for block in blocks:
        if not block.runs:
            continue
        proc = subprocess.Popen(["bash", "-euo", "pipefail", "-c", block.code], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=900)
        finally:
            _kill_group(proc.pid)  # a block's background jobs (the daemon) end with it
        assert proc.returncode == 0, f"{block} failed:\n{block.code}\n{out[-4000:]}"


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        pass
