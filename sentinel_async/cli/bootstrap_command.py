"""`sentinel bootstrap`: build (or find) the cached bootstrap policy and print where it is and its metrics."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sentinel_async.bootstrap.config import NAMED


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "bootstrap",
        help="build the bootstrap policy (tokenizer, small model, SFT on scripted demonstrations), cached",
        description="Build the supervised bootstrap policy once; later calls reuse the cached result.",
    )
    parser.add_argument("--size", choices=list(NAMED), default="tiny", help="model size (default: tiny)")
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="training steps; the LR schedule runs over them, so the build does not depend on the machine's speed "
        "as long as --minutes does not bind first (default: per size; the tiny builds are step-bound, "
        "3,600 steps under a 45-minute cap, and small is time-bound, 60 minutes)",
    )
    parser.add_argument("--minutes", type=float, default=None, help="training time cap (default: per size)")
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="model initialisation and data order (default: 0); another seed is another build, e.g. when "
        "copying was not learnt in this one",
    )
    parser.add_argument("--cache", type=Path, default=None, help="cache folder (default: $SENTINEL_CACHE/bootstrap)")
    parser.add_argument("--force", action="store_true", help="rebuild even when a cached result exists")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(handler=cmd_bootstrap)


def cmd_bootstrap(args: argparse.Namespace) -> int:
    from sentinel_async.bootstrap import bootstrap_config, load_or_build

    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    config = bootstrap_config(args.size, minutes=args.minutes, steps=args.steps, seed=args.seed)
    result = load_or_build(config, cache_dir=args.cache, force=args.force, progress=not args.no_progress)
    print(format_manifest(result.manifest, result.path))
    return 0


def format_manifest(manifest: Any, path: Path) -> str:
    """A short human summary of a bootstrap manifest."""
    from sentinel_async.bootstrap.sft import NOT_LEARNT, cut_short_by_time

    sft, demos = manifest.sft, manifest.demos
    mix = ", ".join(f"{k}={v}" for k, v in demos.episodes_by_intent.items())
    hard = f", hard from step {sft.slot_hard_from}" if sft.slot_hard_from is not None else ""
    copying = []
    if sft.slot_draws > 1:
        copying = [
            f"  model {sft.slot_draws} drawn: the {sft.slot_draws - 1} before it did not learn to copy in time "
            f"({sft.redrawn_steps} steps, {sft.redrawn_seconds:.0f} s discarded)"
        ]
    if sft.slot_learnt_at is not None:
        copying += [f"  copying learnt at step {sft.slot_learnt_at} (easy slot-copy loss under the threshold)"]
    elif sft.slot_waited_out:
        copying += [f"  WARNING: {NOT_LEARNT}"]
    cut_short = cut_short_by_time(manifest.config.sft, sft, manifest.config.size)
    if cut_short is not None:
        copying += [f"  WARNING: {cut_short}"]
    if sft.copy_rates:
        rates = ", ".join(f"{kind} {rate:.2f}" for kind, rate in sft.copy_rates.items())
        drilled = f"; {sft.remedial_steps} steps drilled a kind that failed a check" if sft.remedial_steps else ""
        copying += [f"  copy check after training: {rates} of exercises copied exactly{drilled}"]
    return "\n".join(
        [
            f"bootstrap: {path}",
            f"  size {manifest.config.size}: {manifest.parameters:,} parameters, vocabulary {manifest.vocab_size}, "
            f"prompt prefix {manifest.prompt_prefix_tokens} tokens",
            f"  demonstrations: {demos.episodes} episodes, {demos.tokens:,} tokens "
            f"({demos.assistant_tokens:,} trained on), {demos.recoveries} injected mistakes recovered from; "
            f"by intent: {mix}",
            f"  sft: {sft.steps} steps ({sft.slot_steps} of them slot-copy steps{hard}; {sft.epochs:.1f} epochs of the "
            f"demonstrations) in {sft.seconds:.0f} s, "
            f"{sft.tokens_per_s:,.0f} tok/s, "
            f"loss {sft.loss_first:.3f} -> {sft.loss_last:.3f} (stopped by {sft.stopped_by})",
            *copying,
            f"  built {manifest.created} in {manifest.build_seconds:.0f} s",
        ]
    )
