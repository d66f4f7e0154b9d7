"""SENTINEL vs general synthetic tasks vs the train split only, on one bootstrap policy at equal rollout budgets.

Every arm starts from the same cached bootstrap policy and plays the same number of training episodes
(rounds x tasks per round x group size); only where its extra tasks come from differs:

- `sentinel`: the Proposer turns the Controller's failure patterns into targeted tasks;
- `general`: the Proposer generates the same number of untargeted tasks (uniform over intents);
- `train-only`: no proposed tasks, the 74-task train split alone.

The bootstrap is evaluated once (k trials per test task); each arm and seed is one `sentinel run` folder whose
final policy is evaluated the same way. The bootstrap is also played with sampled turns, as the rollouts play
(`--headroom-trials` per test task): its pass@k there is the headroom, what the policy's own samples already
solve, the most that reinforcing its successes can bring greedy pass^1 to without teaching anything new.
The script prints pass^1..pass^k with 95% bootstrap intervals over the 40 test tasks, the paired difference
of every arm against the bootstrap and of SENTINEL against general, the headroom, and the shift in failure
categories on the test split; it saves results.json, results.md and the plots in `--out`.
Finished runs are reused, so an interrupted experiment continues where it stopped.

    python examples/experiment.py --out runs/experiment      # 3 arms x 3 seeds, trials 4 (about 90 min on 2 cores)
    python examples/experiment.py --out runs/exp11 --trials 2  # measured: 54 min
    # sampled test episodes, so pass^1..pass^4 differ (measured: 43 min for 2 arms x 3 seeds)
    python examples/experiment.py --out runs/exp13 --arms sentinel general --trials 4 --set evaluation.temperature=null
    python examples/experiment.py --out runs/exp-small --rounds 2 --seeds 0 --eval-tasks 8 --trials 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ARMS = {"sentinel": "targeted", "general": "general", "train-only": "off"}
BASELINE = "bootstrap"
HEADROOM = "headroom"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/experiment"), help="experiment folder")
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--rounds", type=int, default=3, help="rollout rounds per run (the rollout budget)")
    parser.add_argument("--tasks-per-round", type=int, default=4)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--trials", type=int, default=4, help="trials per test task (pass^1..pass^trials)")
    parser.add_argument("--headroom-trials", type=int, default=4,
                        help="sampled trials per test task of the bootstrap (its pass@k; 0: skip)")  # fmt: skip
    parser.add_argument("--eval-tasks", type=int, default=None, help="only the first N test tasks")
    parser.add_argument("--size", default="tiny", help="bootstrap size")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (each on one torch thread)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="extra run-configuration overrides, e.g. trainer.lr=2e-5")  # fmt: skip
    return parser.parse_args(argv)


def run_config(args: argparse.Namespace, arm: str, seed: int) -> dict[str, Any]:
    """The overrides of one run; the baseline is a run with no rounds (it only evaluates the bootstrap), the
    headroom the same with sampled evaluation episodes."""
    from sentinel_async.cli.run_command import parse_overrides

    overrides: dict[str, Any] = {
        "run_id": f"{arm}-s{seed}",
        "seed": seed,
        "policy.size": args.size,
        "policy.num_threads": 1,
        "rollout.rounds": 0 if arm in (BASELINE, HEADROOM) else args.rounds,
        "rollout.tasks_per_round": args.tasks_per_round,
        "rollout.group_size": args.group_size,
        "rollout.seed": seed,
        "proposer.mode": ARMS.get(arm, "off"),
        "pool.proposed_ratio": 0.0 if arm in ("train-only", BASELINE, HEADROOM) else 0.5,
        "evaluation.initial": arm in (BASELINE, HEADROOM),
        "evaluation.every": 1_000_000,  # only the final policy is evaluated
        "evaluation.trials": args.trials,
        "evaluation.max_tasks": args.eval_tasks,
    }
    overrides.update(parse_overrides(args.overrides))
    if arm == HEADROOM:  # whatever --set says of evaluations: the headroom is sampled as the rollouts are
        overrides["evaluation.trials"] = args.headroom_trials
        overrides["evaluation.temperature"] = None
    return overrides


def finished(log: Path) -> bool:
    """Whether a run's log holds its final evaluation (the run is then reused, not repeated)."""
    from sentinel_async.analysis import evaluations_in
    from sentinel_async.store import SQLiteEventStore

    if not log.exists():
        return False
    with SQLiteEventStore(log, read_only=True) as store:
        return bool(evaluations_in(store))


async def run_all(args: argparse.Namespace, runs: list[tuple[str, int]]) -> dict[tuple[str, int], Path]:
    """Each (arm, seed) as its own `sentinel run` process, `--jobs` at a time; `--resume` after an interruption."""
    import anyio

    limiter = anyio.CapacityLimiter(max(1, args.jobs))
    logs: dict[tuple[str, int], Path] = {}
    started = time.monotonic()

    async def one(arm: str, seed: int) -> None:
        run_dir = args.out / f"{arm}-s{seed}"
        log = run_dir / "events.sqlite"
        logs[(arm, seed)] = log
        if finished(log):
            print(f"{arm} seed {seed}: reused {run_dir}", flush=True)
            return
        async with limiter:
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "overrides.json").write_text(json.dumps(run_config(args, arm, seed), indent=1))
            command = [sys.executable, "-m", "sentinel_async", "run", "--run-dir", str(run_dir), "--no-progress"]
            command += [f"--set={key}={json.dumps(value)}" for key, value in run_config(args, arm, seed).items()]
            if log.exists():
                command.append("--resume")
            print(f"{arm} seed {seed}: running ({time.monotonic() - started:.0f} s in)", flush=True)
            with (run_dir / "run.log").open("ab") as output:
                process = await anyio.run_process(command, stdout=output, stderr=output, check=False)
            if process.returncode != 0:
                raise SystemExit(f"{arm} seed {seed} failed (exit {process.returncode}); see {run_dir / 'run.log'}")
            print(f"{arm} seed {seed}: done ({time.monotonic() - started:.0f} s in)", flush=True)

    async with anyio.create_task_group() as group:
        for arm, seed in runs:
            group.start_soon(one, arm, seed)
    return logs


def final_rewards(log: Path) -> tuple[dict[str, list[float]], list[str], dict[str, float]]:
    """(rewards per task, episode ids, training metrics) of the last evaluation in a log."""
    from sentinel_async.analysis import evaluations_in, task_rewards
    from sentinel_async.store import SQLiteEventStore

    with SQLiteEventStore(log, read_only=True) as store:
        evaluation = evaluations_in(store)[-1]
        return task_rewards(store, evaluation), list(evaluation.episode_ids), training_metrics(store)


def training_metrics(store: Any) -> dict[str, float]:
    """Training episodes, their mean reward, policy updates and proposed tasks of a run."""
    from sentinel_async.events import EpisodeFinished, PolicyUpdated, TaskProposed
    from sentinel_async.store import EventFilter

    rewards: list[float] = []
    updates = proposed = 0
    for record in store.read(filter=EventFilter.of(types=[EpisodeFinished, PolicyUpdated, TaskProposed])):
        payload = record.payload
        if isinstance(payload, EpisodeFinished) and payload.purpose == "train":
            rewards.append(payload.reward)
        elif isinstance(payload, PolicyUpdated):
            updates += 1
        elif isinstance(payload, TaskProposed):
            proposed += 1
    return {
        "train_episodes": float(len(rewards)),
        "train_reward": sum(rewards) / len(rewards) if rewards else 0.0,
        "policy_updates": float(updates),
        "proposed_tasks": float(proposed),
    }


async def categories(log: Path, episode_ids: list[str]) -> Counter[str]:
    from sentinel_async.analysis import failure_categories
    from sentinel_async.store import SQLiteEventStore
    from sentinel_async.tools.retail import RetailDomain

    with SQLiteEventStore(log, read_only=True) as store:
        return await failure_categories(store, RetailDomain(), episode_ids)


def plot_pass_k(path: Path, table: dict[str, dict[int, Any]], trials: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(table)
    for index, (name, by_k) in enumerate(table.items()):
        ks = list(range(1, trials + 1))
        xs = [k + (index - (len(table) - 1) / 2) * width for k in ks]
        means = [by_k[k].mean for k in ks]
        errors = [[by_k[k].mean - by_k[k].low for k in ks], [by_k[k].high - by_k[k].mean for k in ks]]
        axes.bar(xs, means, width, yerr=errors, capsize=3, label=name)
    axes.set_xticks(list(range(1, trials + 1)), [f"pass^{k}" for k in range(1, trials + 1)])
    axes.set_ylabel("test split (95% bootstrap CI over tasks)")
    axes.set_title("held-out pass^k after training, equal rollout budgets")
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3, axis="y")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_categories(path: Path, shares_by_arm: dict[str, dict[str, float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cats = sorted(
        {c for s in shares_by_arm.values() for c in s}, key=lambda c: -max(s.get(c, 0) for s in shares_by_arm.values())
    )[:10]
    figure, axes = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / max(1, len(shares_by_arm))
    for index, (name, shares) in enumerate(shares_by_arm.items()):
        xs = [i + (index - (len(shares_by_arm) - 1) / 2) * width for i in range(len(cats))]
        axes.bar(xs, [shares.get(c, 0.0) for c in cats], width, label=name)
    axes.set_xticks(range(len(cats)), cats, rotation=30, ha="right", fontsize=7)
    axes.set_ylabel("share of failed test episodes")
    axes.set_title("failure categories on the test split (deterministic Controller)")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def headroom_section(
    pass_at: dict[int, Any], greedy: dict[str, list[float]], sampled: dict[str, list[float]]
) -> list[str]:
    """The results.md lines on the bootstrap's sampled episodes: pass@k, and the share of test tasks that its
    greedy episodes or any of its samples solve (the ceiling of reinforcing what it already does)."""
    from sentinel_async.metrics import is_success

    def solved(rewards: dict[str, list[float]]) -> set[str]:
        return {task for task, r in rewards.items() if any(is_success(x) for x in r)}

    ks = list(pass_at)
    by_samples = sorted(solved(sampled), key=_task_order)
    greedy_share = sum(sum(is_success(x) for x in r) / len(r) for r in greedy.values()) / len(greedy)
    ceiling = len(solved(greedy) | solved(sampled)) / len(greedy)
    return [
        f"## Headroom: the bootstrap's own samples ({ks[-1]} sampled trials per test task)", "",
        "| policy | " + " | ".join(f"pass@{k}" for k in ks) + " |", "| --- |" + " --- |" * len(ks),
        "| bootstrap, sampled | " + " | ".join(pass_at[k].format() for k in ks) + " |", "",
        f"Its samples solve {len(by_samples)} of {len(sampled)} test tasks at least once "
        f"({', '.join(by_samples) or 'none'}). Reinforcing what the policy already does can bring greedy pass^1 "
        f"from {greedy_share:.3f} to at most about {ceiling:.3f} (the tasks its greedy or sampled episodes solve, "
        f"{100 * (ceiling - greedy_share):+.1f} points); more needs what no episode showed.", "",
    ]  # fmt: skip


def _task_order(task_id: str) -> tuple[int, str]:
    return (int(task_id), "") if task_id.isdigit() else (1 << 30, task_id)


async def main(argv: list[str] | None = None) -> int:
    from sentinel_async.analysis import Interval, paired_difference_ci, pass_at_ci, pass_hat_ci, shares
    from sentinel_async.logs import configure_logging

    args = parse_args(argv)
    configure_logging()
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    print(f"baseline: evaluating the bootstrap policy ({args.trials} trials per test task)", flush=True)
    baselines = [(BASELINE, 0)] + ([(HEADROOM, 0)] if args.headroom_trials > 0 else [])
    logs = await run_all(args, baselines + [(arm, seed) for arm in args.arms for seed in args.seeds])
    base_log = logs[(BASELINE, 0)]
    base_rewards, base_ids, _ = final_rewards(base_log)
    runs: dict[str, list[dict[str, list[float]]]] = {}
    run_metrics: dict[str, list[dict[str, float]]] = {}
    cats: dict[str, Counter[str]] = {BASELINE: await categories(base_log, base_ids)}
    for arm in args.arms:
        cats[arm] = Counter()
        for seed in args.seeds:
            rewards, ids, seed_metrics = final_rewards(logs[(arm, seed)])
            runs.setdefault(arm, []).append(rewards)
            run_metrics.setdefault(arm, []).append(seed_metrics)
            cats[arm] += await categories(logs[(arm, seed)], ids)

    ks = range(1, args.trials + 1)
    table: dict[str, dict[int, Interval]] = {"bootstrap": {k: pass_hat_ci([base_rewards], k) for k in ks}}
    for arm, arm_runs in runs.items():
        table[arm] = {k: pass_hat_ci(arm_runs, k) for k in ks}
    deltas = {
        f"{arm} - bootstrap": {k: paired_difference_ci(r, [base_rewards], k) for k in ks} for arm, r in runs.items()
    }
    if "sentinel" in runs and "general" in runs:
        deltas["sentinel - general"] = {k: paired_difference_ci(runs["sentinel"], runs["general"], k) for k in ks}

    header = "| policy | " + " | ".join(f"pass^{k}" for k in ks) + " |"
    rule = "| --- |" + " --- |" * len(ks)
    lines = [f"# SENTINEL vs general synthetic tasks ({len(args.seeds)} seeds, {args.rounds} rounds x "
             f"{args.tasks_per_round} tasks x {args.group_size} episodes per run)", "",
             "95% percentile bootstrap intervals over test tasks; seeds averaged.", "", header, rule]  # fmt: skip
    lines += [f"| {name} | " + " | ".join(by_k[k].format() for k in ks) + " |" for name, by_k in table.items()]
    lines += ["", "## Paired differences", "", header.replace("policy", "difference"), rule]
    lines += [f"| {name} | " + " | ".join(by_k[k].format() for k in ks) + " |" for name, by_k in deltas.items()]
    lines.append("")
    headroom: dict[int, Interval] = {}
    if args.headroom_trials > 0:
        sampled, _, _ = final_rewards(logs[(HEADROOM, 0)])
        headroom = {k: pass_at_ci(sampled, k) for k in range(1, args.headroom_trials + 1)}
        lines += headroom_section(headroom, base_rewards, sampled)
    lines += ["## Training (mean over seeds)", "", "| arm | episodes | train reward | updates | proposed |",
              "| --- | --- | --- | --- | --- |"]  # fmt: skip
    for arm, per_seed in run_metrics.items():
        mean = {key: sum(m[key] for m in per_seed) / len(per_seed) for key in per_seed[0]}
        lines.append(f"| {arm} | {mean['train_episodes']:.0f} | {mean['train_reward']:.3f} | "
                     f"{mean['policy_updates']:.1f} | {mean['proposed_tasks']:.1f} |")  # fmt: skip
    share = {name: shares(counts) for name, counts in cats.items()}
    categories_seen = sorted({c for s in share.values() for c in s})
    lines += ["", "## Failure categories on the test split (share of failed episodes)", "",
              "| category | " + " | ".join(share) + " |", "| --- |" + " --- |" * len(share)]  # fmt: skip
    lines += [f"| {c} | " + " | ".join(f"{s.get(c, 0.0):.2f}" for s in share.values()) + " |" for c in categories_seen]
    plot_pass_k(args.out / "pass_k.png", table, args.trials)
    plot_categories(args.out / "failure_categories.png", share)
    lines += ["", "![pass^k](pass_k.png)", "", "![failure categories](failure_categories.png)", ""]
    (args.out / "results.md").write_text("\n".join(lines))
    results = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "pass_hat": {name: {k: [v.mean, v.low, v.high] for k, v in by_k.items()} for name, by_k in table.items()},
        "differences": {name: {k: [v.mean, v.low, v.high] for k, v in by_k.items()} for name, by_k in deltas.items()},
        "headroom_pass_at": {k: [v.mean, v.low, v.high] for k, v in headroom.items()},
        "failure_counts": {name: dict(c) for name, c in cats.items()},
        "training": run_metrics,
        "seconds": time.monotonic() - started,
    }
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print("\n".join(lines))
    print(f"\nwritten: {args.out / 'results.md'} ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
