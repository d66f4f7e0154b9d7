"""`sentinel replay-batch RUN_DIR --batch ID | --step N`: recompute a recorded training step's loss.

Rebuilds the batch from the log's token ids and the checkpoint the step started from, recomputes the loss,
and exits 1 when it differs from the recorded value by more than the tolerance.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(commands: Any) -> None:
    parser = commands.add_parser("replay-batch", help="recompute a recorded step's loss and compare")
    parser.add_argument("run_dir", help="the run folder (events.sqlite, checkpoints/) or an .sqlite log")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--batch", dest="batch_id", default=None, help="the batch id (e.g. batch-000001)")
    which.add_argument("--step", type=int, default=None, help="the step number instead of the batch id")
    parser.add_argument("--checkpoints", default=None, help="checkpoint folder (default: RUN_DIR/checkpoints)")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="allowed |recorded - recomputed|")
    parser.set_defaults(handler=cmd_replay_batch)


def cmd_replay_batch(args: argparse.Namespace) -> int:
    from sentinel_async.agents.solver.replay import find_batch, replay_batch
    from sentinel_async.cli.log_commands import open_log

    run = Path(args.run_dir)
    checkpoints = Path(args.checkpoints) if args.checkpoints else (run if run.is_dir() else run.parent) / "checkpoints"
    with open_log(args.run_dir) as store:
        batch_id = args.batch_id or find_batch(store, step=args.step).batch_id
        recorded, recomputed = replay_batch(store, batch_id, checkpoints)
    diff = abs(recorded - recomputed)
    ok = diff <= args.tolerance * max(1.0, abs(recorded))
    print(f"batch {batch_id}: recorded loss {recorded:.8g}, recomputed {recomputed:.8g}, |diff| {diff:.3g}")
    print("match" if ok else f"MISMATCH (tolerance {args.tolerance:g})")
    return 0 if ok else 1
