"""`dlbench` command line: the parser, assembled from every feature's command module, and the rules every command
follows. A user's mistake is one line on stderr and exit status 2; Ctrl-C or `kill` ends a command as Ctrl-C does
(exit 130: results kept, workers killed, `--resume` offered).

Each feature's command module has COMMANDS (the names it adds), add_parsers(sub, store_help) and run_command(args)
-> exit status, and loads its heavy modules only when its command runs. Adding a command is one module and one
line in COMMAND_MODULES.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from dlbench._version import __version__
from dlbench.core.errors import UsageError
from dlbench.core.text import printable
from dlbench.runner.faults import RunFailed
from dlbench.store import default_store_path

EXIT_USAGE, EXIT_INTERRUPTED = 2, 130

COMMAND_MODULES = (
    "dlbench.runs.command",  # run, show, runs, list, env
    "dlbench.verify.command",
    "dlbench.report.command",  # report, compare
    "dlbench.envs.command",
    "dlbench.maxbatch.command",
    "dlbench.compile.command",
    "dlbench.usability.command",
    "dlbench.probe.command",
    "dlbench.peak.command",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's own mistakes: one line, exit 2, like ours
        raise UsageError(message)


def _build_parser() -> tuple[argparse.ArgumentParser, dict[str, Any]]:
    """The parser, and the command module that runs each command name."""
    parser = _Parser(prog="dlbench", description="Benchmark deep-learning frameworks on the seed's LSTM and "
                     "VGG-16 workloads, honestly measured.")  # fmt: skip
    parser.add_argument("--version", action="version", version=f"dlbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    store_help = f"SQLite store (default: $DLBENCH_STORE or {default_store_path()})"
    runs: dict[str, Any] = {}
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        module.add_parsers(sub, store_help)
        runs.update(dict.fromkeys(module.COMMANDS, module))
    return parser, runs


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # `kill PID` ends a run as Ctrl-C does: results kept, workers killed, --resume offered


def main(argv: Sequence[str] | None = None) -> int:
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    try:
        return _main(argv)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _main(argv: Sequence[str] | None) -> int:
    try:
        parser, commands = _build_parser()
        args = parser.parse_args(argv)
        if args.command not in commands:
            parser.print_help()
            return EXIT_USAGE
        return int(commands[args.command].run_command(args))
    except UsageError as exc:
        print(f"dlbench: error: {printable(exc)}", file=sys.stderr)  # one line, no escape sequence (core/text.py)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("dlbench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError as exc:
        # Only a reader of stdout that went away (`dlbench show | head`) is not a failure; a pipe to a worker that
        # broke is a fault. A pipe whose reader is gone polls POLLERR on its write end: that tells the two apart.
        import os
        import select

        try:
            poller = select.poll()
            poller.register(sys.stdout.fileno(), select.POLLOUT)
            stdout_gone = any(e & (select.POLLERR | select.POLLHUP) for _, e in poller.poll(0))
        except (AttributeError, OSError, ValueError):
            stdout_gone = False
        if stdout_gone:  # nothing more can be written there; nor must Python's exit flush complain about it
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        print(f"dlbench: error: {printable(exc)} (a pipe other than stdout broke)", file=sys.stderr)
        return 1
    except RunFailed as exc:  # a fault of the store or the workers ended the run: one line, what is stored kept
        print(f"dlbench: error: {printable(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
