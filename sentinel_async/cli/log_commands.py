"""`sentinel log summary|show|follow|export|tau2|failures`: inspect an event log (opened read-only)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import anyio

from sentinel_async.bus import subscribe
from sentinel_async.errors import SentinelError
from sentinel_async.events import FailureDiagnosed, encode_record
from sentinel_async.render import format_timestamp, render
from sentinel_async.store import EventFilter, SQLiteEventStore


def register(commands: Any) -> None:
    log = commands.add_parser("log", help="inspect an event log")
    actions = log.add_subparsers(dest="log_command", required=True, metavar="ACTION")

    summary = actions.add_parser("summary", help="counts by type and stream, time span, consumer cursors")
    _add_path(summary)
    summary.set_defaults(handler=cmd_summary)

    show = actions.add_parser("show", help="print events, filtered")
    _add_path(show)
    _add_filters(show)
    show.add_argument("--limit", type=int, default=None, help="print at most N events")
    show.add_argument("--json", action="store_true", help="print each event as a JSON line")
    show.set_defaults(handler=cmd_show)

    follow = actions.add_parser("follow", help="print new events as they are committed (Ctrl-C stops)")
    _add_path(follow)
    _add_filters(follow)
    follow.add_argument("--last", type=int, default=10, help="first print the last N positions' events")
    follow.set_defaults(handler=cmd_follow)

    export = actions.add_parser("export", help="write events as JSON lines")
    _add_path(export)
    _add_filters(export)
    export.add_argument("-o", "--output", default="-", help="output file (default: standard output)")
    export.set_defaults(handler=cmd_export)

    tau2 = actions.add_parser("tau2", help="write episodes as tau2 SimulationRun JSON files (one per episode)")
    _add_path(tau2)
    tau2.add_argument("--episode", action="append", default=[], help="episode id (repeatable; default: all)")
    tau2.add_argument("--domain", default="retail", help="the episodes' domain (default: retail)")
    tau2.add_argument("-o", "--output", required=True, help="output folder")
    tau2.set_defaults(handler=cmd_tau2)

    failures = actions.add_parser(
        "failures",
        help="every failed episode with its first deviation: category, turn, what was expected and what happened",
    )
    _add_path(failures)
    failures.add_argument("--task", action="append", default=[], help="only this task id (repeatable)")
    failures.add_argument("--episode", action="append", default=[], help="only this episode id (repeatable)")
    failures.add_argument("--domain", default="retail", help="the episodes' domain (default: retail)")
    failures.add_argument("--json", action="store_true", help="print each diagnosis as a JSON line")
    failures.set_defaults(handler=cmd_failures)


def _add_path(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="the event log (an .sqlite file, or a run folder holding events.sqlite)")
    parser.add_argument("--skip-invalid", action="store_true", help="skip records that cannot be decoded")


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stream", action="append", default=[], help="only this stream (repeatable)")
    parser.add_argument("--stream-prefix", default=None, help="only streams starting with this")
    parser.add_argument("--type", action="append", default=[], help="only this event type (repeatable)")
    parser.add_argument("--from", dest="start", type=int, default=1, help="first position")
    parser.add_argument("--to", type=int, default=None, help="last position")


def open_log(path: str) -> SQLiteEventStore:
    """Open a log read-only; a folder means its events.sqlite."""
    from pathlib import Path

    target = Path(path)
    if target.is_dir():
        target = target / "events.sqlite"
    return SQLiteEventStore(target, read_only=True)


def _filter(args: argparse.Namespace) -> EventFilter:
    return EventFilter.of(streams=args.stream, types=args.type, stream_prefix=args.stream_prefix)


def cmd_summary(args: argparse.Namespace) -> int:
    with open_log(args.path) as store:
        summary = store.summary(skip_invalid=args.skip_invalid)
    print(f"log: {args.path}")
    print(f"events: {summary.events} (head position {summary.head})")
    if summary.first_timestamp is not None and summary.last_timestamp is not None:
        span = summary.last_timestamp - summary.first_timestamp
        print(
            f"time: {format_timestamp(summary.first_timestamp)} .. {format_timestamp(summary.last_timestamp)} "
            f"({span:.1f} s)"
        )
    print("by type:")
    for name, count in sorted(summary.by_type.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {name:<28} {count:>8}")
    print(f"streams: {len(summary.by_stream)}")
    for name, count in sorted(summary.by_stream.items(), key=lambda kv: (-kv[1], kv[0]))[:20]:
        print(f"  {name:<40} {count:>8}")
    if len(summary.by_stream) > 20:
        print(f"  ... and {len(summary.by_stream) - 20} more")
    if summary.cursors:
        print("consumer cursors:")
        for name, position in sorted(summary.cursors.items()):
            print(f"  {name:<28} {position:>8}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with open_log(args.path) as store:
        records = store.read(
            after=args.start - 1, to=args.to, filter=_filter(args), limit=args.limit, skip_invalid=args.skip_invalid
        )
        for record in records:
            if args.json:
                sys.stdout.write(encode_record(record).decode() + "\n")
            else:
                print(render(record))
    return 0


def cmd_follow(args: argparse.Namespace) -> int:
    async def follow() -> None:
        with open_log(args.path) as store:
            start = max(args.start - 1, store.head() - args.last)
            events_filter = _filter(args)
            async with subscribe(
                store, start_after=start, filter=events_filter, skip_invalid=args.skip_invalid
            ) as events:
                async for record in events:
                    if args.to is not None and record.position > args.to:
                        return
                    print(render(record), flush=True)
                    if args.to is not None and record.position >= args.to:
                        return

    anyio.run(follow)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    with open_log(args.path) as store:
        records = store.read(after=args.start - 1, to=args.to, filter=_filter(args), skip_invalid=args.skip_invalid)
        out = sys.stdout.buffer if args.output == "-" else open(args.output, "wb")  # noqa: SIM115
        count = 0
        try:
            for record in records:
                out.write(encode_record(record) + b"\n")
                count += 1
        finally:
            if out is not sys.stdout.buffer:
                out.close()
    if args.output != "-":
        print(f"exported {count} events to {args.output}", file=sys.stderr)
    return 0


def cmd_tau2(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sentinel_async.agents.export import episode_ids, episode_simulation_run_json
    from sentinel_async.tools.registry import get_domain

    domain = get_domain(args.domain)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    with open_log(args.path) as store:
        wanted = args.episode or episode_ids(store)
        for episode_id in wanted:
            try:
                text = episode_simulation_run_json(store, episode_id, domain)
            except (KeyError, ValueError) as exc:
                raise SentinelError(f"cannot export episode {episode_id!r}: {exc}") from None
            (out / f"{episode_id}.json").write_text(text)
    print(f"wrote {len(wanted)} tau2 SimulationRun files to {out}", file=sys.stderr)
    return 0


def cmd_failures(args: argparse.Namespace) -> int:
    from collections import Counter

    import msgspec

    from sentinel_async.analysis import diagnose_failures
    from sentinel_async.tools.registry import get_domain

    domain = get_domain(args.domain)

    async def diagnose() -> list[FailureDiagnosed]:
        with open_log(args.path) as store:
            return await diagnose_failures(store, domain, task_ids=args.task, episode_ids=args.episode)

    diagnoses = anyio.run(diagnose)
    if args.json:
        for diagnosis in diagnoses:
            sys.stdout.write(msgspec.json.encode(diagnosis).decode() + "\n")
        return 0
    for diagnosis in diagnoses:
        print(format_diagnosis(diagnosis))
    counts = Counter(d.category for d in diagnoses)
    print(
        f"{len(diagnoses)} failed episodes"
        + (": " + ", ".join(f"{k}={v}" for k, v in counts.most_common()) if counts else "")
    )
    return 0


def format_diagnosis(diagnosis: FailureDiagnosed) -> str:
    """A diagnosis in a few lines: task, episode, category and the deciding evidence."""
    lines = [f"task {diagnosis.task_id}  {diagnosis.episode_id}  {diagnosis.category}", f"  {diagnosis.summary}"]
    if diagnosis.evidence:
        first = diagnosis.evidence[0]
        if first.turn is not None:
            lines[0] += f"  (turn {first.turn})"
        if first.expected is not None:
            lines.append(f"  expected: {first.expected}")
        if first.actual is not None:
            lines.append(f"  actual:   {first.actual}")
    return "\n".join(lines)
