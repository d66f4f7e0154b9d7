"""Controller benchmark: failure -> diagnosis start latency, and diagnoses per second (deterministic analyser).

    python benchmarks/bench_controller.py            # every retail task: the expert and a faulty expert each
    python benchmarks/bench_controller.py --quick    # 30 tasks

Episodes (scripted user; ScriptedExpert or one of the faulty experts) are recorded into an SQLite log at
concurrency 16 while the Controller follows the log in the same event loop. Latency is measured from the
durable commit of an `EpisodeFinished` (the store's `on_commit` hook, on the writer thread) to the moment the
Controller starts analysing it (its `on_analysis_start` hook). Goal: p99 < 50 ms. Then a fresh Controller
drains the finished log from the start (follow=False): diagnoses per second, commits included.
"""

from __future__ import annotations

import argparse
import bisect
import tempfile
import threading
import time
from pathlib import Path

import anyio

from sentinel_async.agents.controller import Controller, ControllerConfig
from sentinel_async.agents.episode import EpisodeRunner
from sentinel_async.agents.rollout import EpisodeJob, run_episodes
from sentinel_async.agents.scripted import FAULTY_EXPERTS, ScriptedExpert, ScriptedUser, derive_user_script
from sentinel_async.agents.scripted.expert import ScriptedExpert as Expert
from sentinel_async.events import FailureDiagnosed, RecordedEvent
from sentinel_async.store import SQLiteEventStore
from sentinel_async.tools.retail import RetailDomain
from sentinel_async.tools.retail.evaluation import Evaluator

DOMAIN = RetailDomain()
GOAL_P99_MS = 50.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def plan(num_tasks: int) -> tuple[list[EpisodeJob], dict[str, type[Expert]]]:
    """Each task once with the expert and once with the next faulty expert that applies to it."""
    jobs: list[EpisodeJob] = []
    policies: dict[str, type[Expert]] = {}
    for index, task in enumerate(DOMAIN.tasks("base")[:num_tasks]):
        faulty = [cls for cls in FAULTY_EXPERTS if cls.applies_to(task, DOMAIN)]
        chosen: list[type[Expert]] = [ScriptedExpert, *(faulty[index % len(faulty) :][:1] if faulty else [])]
        for trial, cls in enumerate(chosen):
            episode_id = f"bench-{task.id}-{cls.__name__}"
            jobs.append(EpisodeJob(task=task, trial=trial, seed=index * 10 + trial, episode_id=episode_id))
            policies[episode_id] = cls
    return jobs, policies


async def _run_until(controller: Controller, store: SQLiteEventStore, done: threading.Event) -> None:
    stop = anyio.Event()

    async def watch() -> None:
        while not done.is_set():  # noqa: ASYNC110 - a flag set from another thread
            await anyio.sleep(0.005)
        stop.set()

    async with anyio.create_task_group() as group:
        group.start_soon(watch)
        await controller.run(store, stop=stop)


async def live(
    path: Path, jobs: list[EpisodeJob], policies: dict[str, type[Expert]], separate_thread: bool
) -> tuple[list[float], int]:
    """Record the episodes while the Controller follows; latencies (ms) from commit to analysis start."""
    commits: list[tuple[int, float]] = []
    lock = threading.Lock()

    def on_commit(head: int) -> None:
        with lock:
            commits.append((head, time.perf_counter()))

    starts: list[tuple[int, float]] = []

    def on_start(record: RecordedEvent) -> None:
        starts.append((record.position, time.perf_counter()))

    by_seed = {job.seed: policies[job.episode_id] for job in jobs}
    runner = EpisodeRunner(domain=DOMAIN, evaluate=Evaluator(DOMAIN).evaluate)
    with SQLiteEventStore(path, on_commit=on_commit) as store:
        controller = Controller(DOMAIN, config=ControllerConfig(pattern_every=25), on_analysis_start=on_start)
        done = threading.Event()
        if separate_thread:  # the Controller as its own agent: its own event loop in a thread
            thread = threading.Thread(target=anyio.run, args=(_run_until, controller, store, done))
            thread.start()
        else:
            stop = anyio.Event()
        async with anyio.create_task_group() as group:
            if not separate_thread:
                group.start_soon(lambda: controller.run(store, stop=stop))
            outcomes = await run_episodes(
                runner,
                jobs,
                make_policy=lambda task, seed: by_seed[seed](task, DOMAIN),
                make_user=lambda task, seed: ScriptedUser(derive_user_script(task, DOMAIN), seed=seed),
                store=store,
                concurrency=16,
            )
            failures = sum(1 for o in outcomes if o.reward is not None and not o.reward.success)
            with anyio.fail_after(60):
                while controller.stats.diagnosed < failures:  # noqa: ASYNC110 - polls another thread's counter
                    await anyio.sleep(0.005)
            done.set()
            if separate_thread:
                await anyio.to_thread.run_sync(thread.join)
            else:
                stop.set()
    with lock:
        heads = [h for h, _ in commits]
        times = [t for _, t in commits]
    latencies = []
    for position, started in starts:
        group_index = bisect.bisect_left(heads, position)  # the first group commit that made it durable
        latencies.append((started - times[group_index]) * 1000)
    return latencies, failures


async def drain(path: Path) -> tuple[int, float]:
    """A fresh Controller over the whole finished log: diagnoses and seconds."""
    with SQLiteEventStore(path) as store:
        controller = Controller(DOMAIN, config=ControllerConfig(consumer="drain", stream="drain", pattern_every=25))
        start = time.perf_counter()
        await controller.run(store, follow=False)
        elapsed = time.perf_counter() - start
        assert (
            sum(isinstance(r.payload, FailureDiagnosed) for r in store.read_stream("drain"))
            == controller.stats.diagnosed
        )
        return controller.stats.diagnosed, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="30 tasks instead of all 114")
    args = parser.parse_args()
    jobs, policies = plan(30 if args.quick else 114)
    print(f"episodes: {len(jobs)} (concurrency 16, SQLite log, synchronous=FULL)")
    with tempfile.TemporaryDirectory() as tmp:
        for separate in (False, True):
            path = Path(tmp) / f"log-{separate}.sqlite"
            latencies, failures = anyio.run(live, path, jobs, policies, separate)
            p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
            verdict = "OK" if p99 < GOAL_P99_MS else "MISSED"
            where = "own thread and event loop" if separate else "same event loop as the 16 producers"
            print(
                f"Controller in {where}: {failures} failures, {len(latencies)} diagnosed live; failure -> diagnosis "
                f"start p50 {p50:.2f} ms  p99 {p99:.2f} ms  max {max(latencies):.2f} ms "
                f"(goal p99 < {GOAL_P99_MS:.0f} ms: {verdict})"
            )
        diagnosed, seconds = anyio.run(drain, path)
    print(f"drain from the log: {diagnosed} diagnoses in {seconds:.2f} s = {diagnosed / seconds:.0f} diagnoses/s")


if __name__ == "__main__":
    main()
