"""The README runs as written.

Every ```bash / ```sh / ```console block of README.md is a list of commands. They are parsed
and checked (each ``python -m`` command against its real argument parser, ``make`` targets,
scripts, local links), then run from the repository root, in order (about a minute), except
those tagged ``<!-- slow: reason -->`` on the line before the fence, which the README lists
under "Tests" with their reasons.
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
SHELL_LANGS = ("bash", "sh", "console")
SLOW_TAG = re.compile(r"^<!--\s*slow:\s*(.+?)\s*-->$")
# Where the runnable blocks may write (both ignored by git).
OUTPUT_ROOTS = ("work", "dist")
OUTPUT_FLAGS = ("--out", "--runs")
SHELL_BUILTINS = {"kill", "cd", "export", "sleep", "wait", "echo"}
PACKAGES = ("synth_render", "backend", "blender_addon")


@dataclass
class Block:
    lang: str
    code: str
    line: int  # 1-based line of the opening fence
    slow: str | None  # the reason, when tagged slow

    def __str__(self) -> str:
        return f"README.md:{self.line} ({self.lang})"


def readme_blocks(text: str) -> list[Block]:
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
                blocks.append(Block(fence, "\n".join(body) + "\n", start + 1,
                                    tag.group(1) if tag else None))
            fence = None
        elif fence is not None:
            body.append(line)
    assert fence is None, "README.md has an unclosed code fence"
    return blocks


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
    else:
        assert program == ".venv/bin/python", f"{block}: use .venv/bin/python (as written, " \
                                              "without activating the venv)"
    parsed = _parse(package, args)
    if block.slow is None:
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
def blocks(readme) -> list[Block]:
    return readme_blocks(readme)


def test_readme_opens_with_a_picture_and_the_two_commands(readme, blocks):
    head = readme.split("\n## ", 1)[0]
    assert re.search(r"!\[[^\]]*\]\(docs/images/\S+\.png\)", head)
    first = [commands(b) for b in blocks[:2]]
    assert first == [[["make", "demo"]], [["make", "test"]]]


def test_every_command_exists_and_takes_its_flags(blocks):
    assert len(blocks) >= 10
    for block in blocks:
        cmds = commands(block)
        assert cmds, f"{block}: no command"
        for tokens in cmds:
            check_command(tokens, block)


def test_every_slow_block_is_listed_with_its_reason(readme, blocks):
    listing = " ".join(_section(readme, "Tests").split())
    slow = [b for b in blocks if b.slow]
    assert slow, "no slow blocks: then say so in the README"
    for block in slow:
        assert " ".join(block.slow.split()) in listing, \
            f"{block}: slow reason {block.slow!r} missing from the README's Tests section"


def test_local_links_and_images_exist(readme):
    targets = re.findall(r"\]\(([^)\s]+)\)", readme)
    local = [t.split("#")[0] for t in targets if not t.startswith(("http", "#", "mailto:"))]
    assert local
    missing = [t for t in local if not (ROOT / t).exists()]
    assert missing == []


def test_entry_points_answer_help():
    """``python -m <package> --help`` exits 0 (the ``__main__`` modules are wired)."""
    for package in PACKAGES:
        proc = subprocess.run([sys.executable, "-m", package, "--help"], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr


@pytest.mark.blender
def test_fast_blocks_run_as_written(blocks):
    """Each untagged block, in order, from the repository root (what a new user does)."""
    for block in blocks:
        if block.slow:
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
