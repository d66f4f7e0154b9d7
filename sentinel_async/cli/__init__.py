"""The `sentinel` command line. Each subcommand lives in its own module and registers its parser."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sentinel_async import __version__
from sentinel_async.cli import bootstrap_command, eval_command, log_commands, replay_batch, run_command
from sentinel_async.errors import SentinelError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sentinel", description=__doc__)
    parser.add_argument("--version", action="version", version=f"sentinel-async {__version__}")
    parser.add_argument("--log-json", action="store_true", help="write diagnostics as JSON lines")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    bootstrap_command.register(commands)
    eval_command.register(commands)
    log_commands.register(commands)
    replay_batch.register(commands)
    run_command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `sentinel` command; returns the exit status."""
    from sentinel_async.logs import configure_logging

    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(json=args.log_json or None)
    try:
        status: int = args.handler(args)
        return status
    except SentinelError as exc:
        print(f"sentinel: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a folder that cannot be created, a file that cannot be written
        print(f"sentinel: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sentinel: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `sentinel log show ... | head`
        return 0
