"""`hf-pins` command line: one sub-command per pipeline stage, each in `hf_pins/commands/<name>.py`.

A sub-command module defines `register(subparsers)` (adds its parser and sets `func`) and a `run(args) -> int`.
User mistakes (`hf_pins.errors.UserError`, and argparse's own: an unknown flag, two exclusive flags) print one line on
stderr and exit with code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import RunStopped, UserError

# Order is the order of `hf-pins --help`.
COMMANDS = ("train", "export", "benchmark", "push", "recipes")


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a command-line mistake is one `error:` line naming the command and pointing at its --help,
    instead of the whole usage block (sub-command parsers are made of this class too)."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="hf-pins", description="Fine-tune and prune BERT-family encoders.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"hf_pins.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RunStopped as exc:
        print(f"stopped: {exc}", file=sys.stderr)
        return exc.exit_code
    except FloatingPointError as exc:  # the run diverged: not a bug in the code, not the user's typo either
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
