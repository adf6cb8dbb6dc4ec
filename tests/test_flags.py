"""One config-from-flags mechanism for every command: the same device spelling everywhere,
counts validated in the shell, renamed flags still accepted under their old names."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from backend.cli import build_parser
from backend.core.config import (
    add_dataclass_arguments,
    arg,
    dataclass_from_args,
    non_negative_int,
    positive_int,
)
from backend.core.device import device_name, resolve_device

DEVICE_COMMANDS = {  # command -> the other arguments it needs to parse
    "train": [], "average": ["a.pt", "b.pt", "--out", "x.pt"], "eval": ["--out", "o"],
    "serve": [], "reconstruct": ["img.png", "--out", "o"],
}


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


@pytest.mark.parametrize("command", sorted(DEVICE_COMMANDS))
def test_every_device_flag_takes_the_same_spellings(command, capsys):
    for spelling in ("auto", "cpu", "cuda", "cuda:1", "CUDA:0"):
        args = parse(command, *DEVICE_COMMANDS[command], "--device", spelling)
        assert args.device == spelling.lower()
    with pytest.raises(SystemExit) as exc:
        parse(command, *DEVICE_COMMANDS[command], "--device", "gpu")
    assert exc.value.code == 2
    assert "unknown device 'gpu'; expected auto" in capsys.readouterr().err


def test_resolving_a_device_that_is_not_there_is_a_clear_error():
    import torch

    assert str(resolve_device("auto")) == ("cuda:0" if torch.cuda.is_available() else "cpu")
    assert str(resolve_device("cpu")) == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device cuda:0 is not usable here"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="unknown device"):
        device_name("tpu")


def test_serve_and_eval_refuse_a_missing_gpu_without_a_traceback(tmp_path, caplog):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    from backend.cli import main

    assert main(["serve", "--device", "cuda:3", "--bind", f"ipc://{tmp_path}/s"]) == 2
    assert main(["eval", "--device", "cuda", "--out", str(tmp_path / "e"), "--renders",
                 str(tmp_path), "--voxels", str(tmp_path)]) == 2
    assert "is not usable here" in caplog.text and "Traceback" not in caplog.text


@pytest.mark.parametrize(("argv", "dest", "value"), [
    (["train", "--num-workers", "3"], "num_workers", 3),
    (["train", "--loader-workers", "3"], "num_workers", 3),
    (["eval", "--out", "o", "--workers", "3"], "workers", 3),
    (["eval", "--out", "o", "--loader-workers", "3"], "workers", 3),
    (["dataset", "--workers", "3"], "workers", 3),
    (["dataset", "--render-workers", "3"], "workers", 3),
    (["demo", "--workers", "3"], "workers", 3),
    (["demo", "--render-workers", "3"], "workers", 3),
    (["serve", "--drain-timeout", "3"], "drain_timeout_s", 3.0),
])
def test_renamed_flags_keep_their_old_spelling(argv, dest, value):
    assert getattr(parse(*argv), dest) == value


@pytest.mark.parametrize("argv", [
    ["dataset", "--per-class", "0"], ["dataset", "--views", "-1"], ["serve", "--max-batch", "0"],
    ["serve", "--threads", "-1"], ["eval", "--out", "o", "--views", "0"],
    ["eval", "--out", "o", "--batch-size", "x"], ["train-foreground", "--steps", "0"],
    ["reconstruct", "i.png", "--out", "o", "--timeout", "0"], ["demo", "--port", "-5"],
    ["average", "a.pt", "--out", "x", "--val-views", "0"],
])
def test_bad_counts_fail_in_the_shell(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        parse(*argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "must be" in err or "expected an integer" in err


def test_reconstruct_keeps_server_and_local_exclusive(capsys):
    with pytest.raises(SystemExit):
        parse("reconstruct", "i.png", "--out", "o", "--local", "--server", "tcp://x:1")
    args = parse("reconstruct", "i.png", "j.png", "--out", "o", "--no-autocrop", "--fuse")
    assert (args.images[1].name, args.autocrop, args.fuse, args.local) == ("j.png", False,
                                                                          True, False)


@dataclass
class Nested:
    depth: int = arg(2, "depth", type=positive_int)


@dataclass
class Example:
    paths: list[str] = arg(help="inputs", positional=True)
    out: str = arg(help="required")
    count: int = arg(0, "a count", type=non_negative_int, aliases=("--n",))
    timeout_s: float = arg(1.0, "seconds", flag="timeout")
    tags: tuple[str, ...] = arg(("a",), "tags")
    on: bool = arg(True, "a switch")
    hidden: str = arg("x", "set in code", cli=False)
    nested: Nested = arg(Nested(), "nested")


def test_the_mechanism_round_trips_a_config():
    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, Example)
    cfg = dataclass_from_args(Example, parser.parse_args(
        ["p1", "p2", "--out", "o", "--n", "4", "--timeout", "2.5", "--tags", "b", "c",
         "--no-on", "--nested-depth", "3"]))
    assert cfg == Example(["p1", "p2"], "o", 4, 2.5, ("b", "c"), False, "x", Nested(3))
    with pytest.raises(SystemExit):
        parser.parse_args(["p", "--out", "o", "--hidden", "y"])
    with pytest.raises(SystemExit):
        parser.parse_args(["p"])  # --out is required
