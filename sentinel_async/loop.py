"""`sentinel run`: the whole SENTINEL loop in one process, every decision an event in the run's log.

Under one anyio task group: the rollout worker plays rounds of grouped episodes on tasks the pool picks; the
Controller diagnoses each failed episode as it lands and reports recurring patterns; the Proposer turns the
patterns into verified tasks that join the pool; the Solver forms batches of complete groups, trains off the
event loop's thread and pushes the new weights into the rollout policy; an evaluator scores each new policy
version on the held-out split. Each consumer commits its cursor with its outputs, so `--resume` after a kill
continues with no lost or repeated work.
"""

from __future__ import annotations

import functools
import random
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import msgspec
from tqdm import tqdm

from sentinel_async.agents.controller.service import Controller, ControllerConfig
from sentinel_async.agents.episode import EpisodeOutcome
from sentinel_async.agents.evaluation import EvalConfig, evaluate, register_tasks
from sentinel_async.agents.guidance import GuidedPolicy
from sentinel_async.agents.recording import episode_stream
from sentinel_async.agents.rollout import plan_trials
from sentinel_async.agents.rollout_worker import RolloutWorker
from sentinel_async.agents.scripted import ScriptCache, ScriptedUser
from sentinel_async.agents.scripted.dialogue_expert import DialogueExpert
from sentinel_async.agents.solver.backlog import TrainerBacklog
from sentinel_async.agents.solver.service import Solver, SolverConfig
from sentinel_async.agents.solver.trainer import GRPOTrainer
from sentinel_async.agents.solver.weights import InProcessSync
from sentinel_async.bus import subscribe
from sentinel_async.errors import SentinelError
from sentinel_async.events import EvaluationFinished, PolicyUpdated, RunStarted
from sentinel_async.logs import get_logger
from sentinel_async.policies import LoadedPolicy, load_policy, with_temperature
from sentinel_async.run_config import RunConfig
from sentinel_async.store import EventFilter, EventStore, SQLiteEventStore
from sentinel_async.tools.base import Domain, TaskSpec
from sentinel_async.tools.registry import get_domain

if TYPE_CHECKING:
    from sentinel_async.bootstrap.names import NamePool

_log = get_logger("loop")


class RunSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What a run did, read back from its log."""

    episodes: int
    policy_version: int
    evaluations: dict[int, float]


def last_policy_update(store: EventStore) -> PolicyUpdated | None:
    updates = [r.payload for r in store.read(filter=EventFilter.of(types=[PolicyUpdated]))]
    last = updates[-1] if updates else None
    return last if isinstance(last, PolicyUpdated) else None


def evaluations(store: EventStore) -> dict[int, float]:
    """pass^1 of every evaluated policy version."""
    found: dict[int, float] = {}
    for record in store.read(filter=EventFilter.of(types=[EvaluationFinished])):
        if isinstance(record.payload, EvaluationFinished):
            found[record.payload.policy_version] = record.payload.pass_hat_k.get(1, 0.0)
    return found


def untouched_eval_id(store: EventStore, base: str, tasks: Sequence[TaskSpec], trials: int) -> str:
    """`base`, or `base-a<n>` for the n-th retry when an earlier attempt was cut short (a killed process) and left
    episodes in the log under those ids; they stay as they are."""
    run_id, attempt = base, 0
    # (episode ids do not depend on the seed)
    while any(
        store.stream_version(episode_stream(job.episode_id))
        for job in plan_trials(tasks, trials, seed=0, prefix=run_id)
    ):
        attempt += 1
        run_id = f"{base}-a{attempt}"
    return run_id


class TrainingRun:
    """One run folder: its log, policy, trainer and agents."""

    def __init__(
        self, config: RunConfig, run_dir: Path, store: EventStore, loaded: LoadedPolicy, *, progress: bool = False
    ) -> None:
        self.config = config
        self.progress = progress
        self.run_dir = run_dir
        self.store = store
        self.loaded = loaded
        self._evaluating = anyio.Lock()
        """Held while an evaluation runs: shutting down waits for it instead of cutting its episodes short."""
        self.domain: Domain = get_domain(config.domain)
        self._scripts = ScriptCache(self.domain)  # type: ignore[arg-type]  # the loop plays retail
        self._name_pool: NamePool | None = None
        self._backlog: TrainerBacklog | None = None
        self.trainer = GRPOTrainer(
            loaded.train_model,
            config.trainer,
            run_dir / "checkpoints",
            version=loaded.version,
            save_initial=loaded.version == 0,
            resume=loaded.version > 0,  # the optimizer state saved with that version's checkpoint
        )
        batching = config.batching
        if batching.group_size is None:
            # Episodes land whole, one by one: without the expected size, a group's first finished episode would
            # look like a complete group of one (and be dropped before its siblings arrive).
            size = config.rollout.group_size + config.rollout.expert_episodes
            batching = msgspec.structs.replace(batching, group_size=size)
        self.solver = Solver(
            store, self.trainer, config=SolverConfig(batching=batching), sync=InProcessSync(loaded.policy)
        )

    def make_user(self, task: TaskSpec, seed: int) -> Any:
        return ScriptedUser(self._scripts.get(task), seed=seed)

    def make_guide(self, task: TaskSpec, seed: int) -> Any:
        """A guide episode's policy: the dialogue expert (the bootstrap's demonstrator) speaking through the
        rollout policy's tokens (`sentinel_async.agents.guidance`), its customer renamed when
        `rollout.rename_guides`, its ids when `rollout.rename_guide_ids`, its payment kinds when
        `rollout.rename_guide_payment_kinds`."""
        from sentinel_async.bootstrap.ids import IdRenaming, PaymentKindRenaming
        from sentinel_async.bootstrap.names import ChainedRenaming, TextRenaming, draw_renaming

        expert = DialogueExpert(task, self.domain, script=self._scripts.get(task))  # type: ignore[arg-type]
        renamings: list[TextRenaming] = []
        if self.config.rollout.rename_guides:
            renamings.append(draw_renaming(self._names(), random.Random(seed)))
        if self.config.rollout.rename_guide_ids:
            renamings.append(IdRenaming(seed))
        if self.config.rollout.rename_guide_payment_kinds:
            renamings.append(PaymentKindRenaming(seed))
        rename = ChainedRenaming(*renamings).message if renamings else None
        return GuidedPolicy(expert, self.loaded.policy, rename=rename)

    def _names(self) -> NamePool:
        """The database's customer names, which renamed guides swap among themselves; built on first use."""
        if self._name_pool is None:
            from sentinel_async.bootstrap.entities import catalogue_text
            from sentinel_async.bootstrap.names import retail_name_pool

            self._name_pool = retail_name_pool(self.domain.db, catalogue_text(self.domain))  # type: ignore[attr-defined]
        return self._name_pool

    def worker(self, on_done: Callable[[EpisodeOutcome], None]) -> RolloutWorker:
        return RolloutWorker(
            self.store,
            self.domain,
            run_id=self.config.run_id,
            make_policy=lambda task, seed: self.loaded.policy,
            make_user=self.make_user,
            policy_version=lambda: self.loaded.policy.policy_version,
            config=self.config.rollout,
            pool_config=self.config.pool,
            on_done=on_done,
            make_guide=self.make_guide if self.config.rollout.expert_episodes > 0 else None,
            wait_for_trainer=self.wait_for_trainer if self.config.rollout.wait_for_trainer else None,
        )

    async def wait_for_trainer(self, groups: int) -> bool:
        """Hold `groups` new groups until the Solver's backlog lets them be trained on within
        `batching.max_staleness` versions."""
        if self._backlog is None:
            self._backlog = TrainerBacklog(self.store, self.solver.config.batching.group_size)
        return await self._backlog.wait(
            groups, self.solver.config.batching.max_staleness, serving=lambda: self.loaded.policy.policy_version
        )

    async def evaluate_version(self, version: int) -> float:
        """Evaluate the rollout policy (now at `version`) on the held-out split; record it once per version."""
        async with self._evaluating:
            return await self._evaluate_version(version)

    async def _evaluate_version(self, version: int) -> float:
        done = evaluations(self.store)
        if version in done:
            return done[version]
        settings = self.config.evaluation
        tasks = self.domain.tasks(settings.split)
        if settings.max_tasks is not None:
            tasks = tasks[: settings.max_tasks]
        eval_config = EvalConfig(
            domain=self.config.domain,
            split=settings.split,
            trials=settings.trials,
            concurrency=settings.concurrency,
            seed=self.config.seed,
            max_steps=settings.max_steps,
            task_ids=[t.id for t in tasks],
            run_id=untouched_eval_id(self.store, f"{self.config.run_id}-eval-v{version}", tasks, settings.trials),
        )
        policy = with_temperature(self.loaded.policy, settings.temperature)
        with tqdm(
            total=len(tasks) * settings.trials,
            desc=f"evaluating v{version}",
            unit="ep",
            disable=not self.progress,
            leave=False,
            file=sys.stderr,
        ) as bar:
            result = await evaluate(
                eval_config,
                self.domain,
                self.store,
                make_policy=lambda task, seed: policy,
                make_user=self.make_user,
                policy_version=version,
                on_done=lambda outcome: bar.update(1),
                record_run=False,
            )
        _log.info("evaluated", version=version, pass_1=result.report.pass_hat[1])
        return result.report.pass_hat[1]

    async def evaluate_updates(self) -> None:
        """Evaluate each `every`-th new version once the rollout policy has it."""
        every = max(1, self.config.evaluation.every)
        wanted = EventFilter.of(types=[PolicyUpdated])
        async with subscribe(self.store, filter=wanted, idle_timeout=0.5) as updates:
            async for record in updates:
                assert isinstance(record.payload, PolicyUpdated)
                version = record.payload.version
                if version % every:
                    continue
                while self.loaded.policy.policy_version < version:  # noqa: ASYNC110 - the sync follows the commit
                    await anyio.sleep(0.05)
                await self.evaluate_version(version)

    async def run(self, on_done: Callable[[EpisodeOutcome], None]) -> None:
        """Play every round with the agents running alongside, then evaluate the final policy."""
        from sentinel_async.agents.proposer.service import ProposalEngine, Proposer, ProposerConfig
        from sentinel_async.tools.retail import RetailDomain

        controller = Controller(self.domain, config=ControllerConfig(pattern_every=self.config.pattern_every))
        controller_stop = threading.Event()
        async with anyio.create_task_group() as group:
            # The Controller gets its own thread and event loop, so a failure is diagnosed within milliseconds
            # even while rollouts keep this loop busy. Whatever ends this block stops that thread too.
            group.start_soon(anyio.to_thread.run_sync, _run_in_own_loop, controller, self.store, controller_stop)
            group.start_soon(_stop_on_exit, controller_stop)
            if self.config.proposer.mode != "off":
                proposer_config = ProposerConfig(
                    mode=self.config.proposer.mode,
                    candidates_per_pattern=self.config.proposer.candidates_per_pattern,
                    difficulty=self.config.proposer.difficulty,
                    aim_at_tool=self.config.proposer.aim_at_tool,
                    seed=self.config.seed,
                )
                if not isinstance(self.domain, RetailDomain):
                    raise SentinelError("the Proposer generates retail tasks; use --set proposer.mode=off")
                engine = ProposalEngine(self.domain, proposer_config)
                proposer = Proposer(self.store, engine=engine, config=proposer_config)
                group.start_soon(proposer.run)
            group.start_soon(self.solver.run)
            if self.config.evaluation.initial:
                await self.evaluate_version(self.loaded.policy.policy_version)
            group.start_soon(self.evaluate_updates)
            await self.worker(on_done).run()
            await self.settle()
            controller_stop.set()
            async with self._evaluating:  # an evaluation under way finishes first: cut short, it would be redone
                group.cancel_scope.cancel()
        await self.evaluate_version(self.loaded.policy.policy_version)

    async def settle(self, timeout: float = 600.0) -> None:
        """Wait until the Solver has seen every finished training episode (its last step may still land)."""
        last = self._last_training_finish()  # the rounds are over: no training episode comes after this
        with anyio.move_on_after(timeout):
            while self.solver.position < last:  # noqa: ASYNC110 - polling the solver
                await anyio.sleep(0.1)

    def _last_training_finish(self) -> int:
        last = 0
        for record in self.store.read(filter=EventFilter.of(types=["episode_finished"])):
            if getattr(record.payload, "purpose", "train") != "eval":  # training and guide episodes
                last = record.position
        return last


async def _stop_on_exit(stop: threading.Event) -> None:
    """Set `stop` when the task group ends, normally or by an error or cancellation."""
    try:
        await anyio.sleep_forever()
    finally:
        stop.set()


def _run_in_own_loop(controller: Controller, store: EventStore, stop: threading.Event) -> None:
    """Run the Controller on a fresh event loop in this (worker) thread until `stop` is set."""

    async def main() -> None:
        local_stop = anyio.Event()
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: controller.run(store, stop=local_stop))
            while not stop.is_set():  # noqa: ASYNC110 - a threading.Event set from the other loop
                await anyio.sleep(0.05)
            local_stop.set()

    anyio.run(main)


async def run_training(
    config: RunConfig,
    run_dir: Path,
    *,
    resume: bool = False,
    on_done: Callable[[EpisodeOutcome], None] | None = None,
    progress: bool = False,
) -> RunSummary:
    """Run (or, with `resume`, continue) a training run in `run_dir` (created if needed); `progress` shows a bar
    per evaluation (rollout progress is `on_done`'s)."""
    path = run_dir / "events.sqlite"
    with SQLiteEventStore(path) as store:
        started = [r.payload for r in store.read(filter=EventFilter.of(types=[RunStarted]))]
        if started and not resume:
            raise SentinelError(
                f"{run_dir} already holds a run; continue it with --resume, or choose another --run-dir"
            )
        if started and isinstance(started[0], RunStarted) and resume:
            config = msgspec.convert(started[0].config, RunConfig)  # a resumed run keeps its configuration
        if not started:
            await store.append("runs", [RunStarted(run_id=config.run_id, config=msgspec.to_builtins(config))])
        domain = get_domain(config.domain)
        await register_tasks(store, domain, domain.tasks("train"), "train")
        last = last_policy_update(store)
        # In a worker thread: the first use builds the bootstrap (minutes, with its own event loop for demos).
        loaded = await anyio.to_thread.run_sync(
            functools.partial(
                load_policy,
                config.policy,
                seed=config.seed,
                checkpoint=last.checkpoint if last else None,
                version=last.version if last else 0,
            )
        )
        run = TrainingRun(config, run_dir, store, loaded, progress=progress)
        await run.run(on_done or (lambda outcome: None))
        from sentinel_async.report import write_report

        write_report(store, run_dir / "report")
        episodes = sum(1 for _ in store.read(filter=EventFilter.of(types=["episode_finished"])))
        return RunSummary(
            episodes=episodes, policy_version=loaded.policy.policy_version, evaluations=evaluations(store)
        )
