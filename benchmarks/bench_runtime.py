"""Runtime benchmark: our evaluator vs tau2's, and episode throughput with an SQLite log vs in memory.

    python benchmarks/bench_runtime.py            # all 114 retail tasks
    python benchmarks/bench_runtime.py --quick    # 30 tasks

Prints, side by side in one run:
1. our reward vs tau2's own evaluators (EnvironmentEvaluator x CommunicateEvaluator) on the same
   trajectories (the scripted expert with the scripted user): identical rewards, and the speed ratio (goal >= 10x);
2. episodes per second, scripted policy and user, concurrency 16: SQLite log vs in-memory store
   (goal: the log costs <= 20%).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import anyio

from sentinel_async.agents.episode import EpisodeConfig, EpisodeOutcome, EpisodeRunner, evaluation_view
from sentinel_async.agents.rollout import EpisodeJob, plan_trials, run_episodes
from sentinel_async.agents.scripted import ScriptedExpert, ScriptedUser, derive_user_script
from sentinel_async.store import EventStore, MemoryEventStore, SQLiteEventStore
from sentinel_async.tools.base import TaskSpec
from sentinel_async.tools.retail import RetailDomain
from sentinel_async.tools.retail.evaluation import Evaluator, score_with_tau2

DOMAIN = RetailDomain()


async def rollouts(store: EventStore | None, jobs: list[EpisodeJob]) -> tuple[list[EpisodeOutcome], float]:
    runner = EpisodeRunner(domain=DOMAIN, config=EpisodeConfig(), evaluate=Evaluator(DOMAIN).evaluate)
    start = time.perf_counter()
    outcomes = await run_episodes(
        runner,
        jobs,
        make_policy=lambda task, seed: ScriptedExpert(task, DOMAIN),
        make_user=lambda task, seed: ScriptedUser(derive_user_script(task, DOMAIN), seed=seed),
        store=store,
        concurrency=16,
    )
    return outcomes, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    tasks: list[TaskSpec] = DOMAIN.tasks("base")[: 30 if args.quick else None]
    by_id = {t.id: t for t in tasks}

    # 1. evaluator speed and agreement, on real episodes
    outcomes, _ = anyio.run(rollouts, None, plan_trials(tasks, 1, seed=0, prefix="ev"))
    ours_evaluator = Evaluator(DOMAIN)
    for outcome in outcomes[:3]:  # warm the gold cache as a long run would
        ours_evaluator.evaluate(by_id[outcome.task_id], evaluation_view(outcome.messages), outcome.termination)
    start = time.perf_counter()
    ours = [
        ours_evaluator.evaluate(by_id[o.task_id], evaluation_view(o.messages), o.termination).reward for o in outcomes
    ]
    ours_time = time.perf_counter() - start
    start = time.perf_counter()
    theirs = [score_with_tau2(by_id[o.task_id], evaluation_view(o.messages), o.termination).reward for o in outcomes]
    tau2_time = time.perf_counter() - start
    agree = sum(a == b for a, b in zip(ours, theirs, strict=True))

    # 2. throughput, SQLite log vs memory (three trials per task)
    jobs_mem = plan_trials(tasks, 3, seed=1, prefix="mem")
    jobs_log = plan_trials(tasks, 3, seed=1, prefix="log")
    _, memory_time = anyio.run(rollouts, MemoryEventStore(), jobs_mem)
    with tempfile.TemporaryDirectory() as tmp, SQLiteEventStore(Path(tmp) / "events.sqlite") as store:
        _, sqlite_time = anyio.run(rollouts, store, jobs_log)
        events = store.head()
    memory_rate, sqlite_rate = len(jobs_mem) / memory_time, len(jobs_log) / sqlite_time

    print(f"sentinel-async runtime benchmark ({len(tasks)} retail tasks, scripted expert + scripted user)")
    print(
        f"rewards: ours == tau2's on {agree}/{len(outcomes)} trajectories; mean reward ours {sum(ours) / len(ours):.3f}"
    )
    print(
        f"evaluator ms/trajectory: ours {ours_time / len(ours) * 1e3:.2f}, tau2 {tau2_time / len(theirs) * 1e3:.1f} "
        f"-> {tau2_time / ours_time:.0f}x faster (goal >= 10x)"
    )
    print(
        f"episodes/s (concurrency 16, {len(jobs_log)} episodes): in-memory {memory_rate:.1f}, "
        f"SQLite log {sqlite_rate:.1f} "
        f"({events} events) -> the log costs {(1 - sqlite_rate / memory_rate) * 100:.1f}% (goal <= 20%)"
    )


if __name__ == "__main__":
    main()
