"""The ``augrgb`` command line: one sub-command per pipeline stage.

Each stage module exposes ``register(subparsers)`` that adds its commands; every command
sets ``func`` to a callable taking the parsed namespace and returning an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from augrgb import __version__
from augrgb.core.errors import InputError
from augrgb.core.paths import printable

# Modules that add sub-commands, in the order they appear in --help.
COMMAND_MODULES: tuple[str, ...] = (
    "augrgb.demo.cli",
    "augrgb.synth.cli",
    "augrgb.extract.cli",
    "augrgb.distill.cli",
    "augrgb.detect.cli",
    "augrgb.evaluate.cli",
    "augrgb.experiments.cli",
    "augrgb.plot.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every stage's commands registered."""
    parser = argparse.ArgumentParser(
        prog="augrgb",
        description=(
            "Augmented-RGB action detection. Stage 1 'extract' turns raw videos into features "
            "(RGB/flow I3D, pose AGCN); stage 2 'distill' trains a teacher and an RGB student with "
            "cross-modal knowledge distillation; stage 3 'detect' turns raw video into action "
            "intervals reading RGB only."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"augrgb {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``augrgb`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        # A command group called without its sub-command: show that group's help.
        (getattr(args, "group_parser", None) or parser).print_help()
        return 2
    previous = _stop_on_sigterm()
    try:
        return int(func(args) or 0)
    except InputError as exc:  # a bad input, option or file: one line naming it and the reason
        print(printable(f"error: {exc}"), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _stop_on_sigterm() -> Any:
    """Handle SIGTERM (``docker stop``, a cluster's job kill) like Ctrl-C, so temporary files are removed and
    workers stopped; returns the previous handler (None where signals cannot be set: not the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    owner = os.getpid()

    def interrupt(signum: int, frame: object) -> None:
        if os.getpid() != owner:  # a forked worker inherited the handler: end it as SIGTERM would have
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, interrupt)


if __name__ == "__main__":
    sys.exit(main())
