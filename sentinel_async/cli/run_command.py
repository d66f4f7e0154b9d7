"""`sentinel run`: the whole SENTINEL loop in one process, in a run folder; `--resume` continues a killed run."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

import anyio

from sentinel_async.agents.episode import EpisodeOutcome
from sentinel_async.run_config import load_run_config


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "run",
        help="run the SENTINEL loop (rollouts, Controller, Proposer, pool, GRPO Solver) in one process",
        description="Run the SENTINEL loop. Defaults: the CPU bootstrap policy, scripted user, retail, GRPO on CPU.",
    )
    parser.add_argument("--config", type=Path, help="a TOML or JSON RunConfig file")
    parser.add_argument("--run-dir", type=Path, help="the run folder (default: runs/run-<time>)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --run-dir where it stopped")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set rollout.rounds=6 --set proposer.mode=general",
    )
    parser.add_argument("--policy", choices=["bootstrap", "tiny-random"], help="shortcut for --set policy.kind=...")
    parser.add_argument("--rounds", type=int, help="shortcut for --set rollout.rounds=N")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(handler=cmd_run)

    report = commands.add_parser("report", help="write a run's report (markdown and PNG plots) from its log")
    report.add_argument("run_dir", type=Path, help="the run folder")
    report.set_defaults(handler=cmd_report)


def _parse_value(text: str) -> Any:
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`KEY=VALUE` strings as dotted-key overrides (values parsed as JSON when they are JSON)."""
    from sentinel_async.errors import SentinelError

    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SentinelError(f"--set takes KEY=VALUE, got {item!r}")
        overrides[key] = _parse_value(value)
    return overrides


def cmd_run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from sentinel_async.errors import SentinelError
    from sentinel_async.loop import run_training

    overrides = parse_overrides(args.set)
    if args.policy:
        overrides["policy.kind"] = args.policy
    if args.rounds is not None:
        overrides["rollout.rounds"] = args.rounds
    config = load_run_config(args.config, overrides)
    if args.resume and args.run_dir is None:
        raise SentinelError("--resume needs --run-dir (the folder of the run to continue)")
    run_dir: Path = args.run_dir or Path("runs") / f"run-{dt.datetime.now(tz=dt.UTC):%Y%m%d-%H%M%S}"
    run_dir.mkdir(parents=True, exist_ok=True)
    total = config.rollout.rounds * config.rollout.tasks_per_round * config.rollout.group_size
    bar = tqdm(total=total, desc="rollouts", unit="ep", disable=args.no_progress, file=sys.stderr)
    successes = 0

    def on_done(outcome: EpisodeOutcome) -> None:
        nonlocal successes
        successes += int(outcome.reward is not None and outcome.reward.success)
        bar.update(1)
        bar.set_postfix(success=f"{successes}/{bar.n or 1}")

    try:
        summary = anyio.run(
            lambda: run_training(config, run_dir, resume=args.resume, on_done=on_done, progress=not args.no_progress)
        )
    except KeyboardInterrupt:
        bar.close()
        print(f"stopped; continue with: sentinel run --run-dir {run_dir} --resume", file=sys.stderr)
        return 130
    bar.close()
    print(f"run folder: {run_dir}  (report: {run_dir / 'report' / 'report.md'})")
    print(f"episodes in the log: {summary.episodes}; final policy version: {summary.policy_version}")
    for version, pass_1 in sorted(summary.evaluations.items()):
        print(f"  v{version}: {config.evaluation.split} pass^1 = {pass_1:.3f}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from sentinel_async.cli.log_commands import open_log
    from sentinel_async.report import write_report

    with open_log(str(args.run_dir)) as store:
        path = write_report(store, args.run_dir / "report")
    print(f"wrote {path}")
    return 0
