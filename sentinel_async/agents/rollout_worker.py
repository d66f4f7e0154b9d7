"""The rollout worker of a training run: each round it asks the pool for tasks and plays a group per task.

Every decision lands in the log first (admissions, retirements, the round's `TasksSampled`), then the
episodes, each written whole (buffered). Episode ids are derived from the round, task and index, so after a
crash the worker finds the last round it sampled, skips the episodes that finished and replays the rest.

With `expert_episodes` > 0 and a `make_guide` factory, each group first gets that many guide episodes (purpose
"guide", ids `<group>-guide<k>`): the expert plays, the policy's tokens are recorded (`agents.guidance`).

With a `wait_for_trainer` gate (the run's, when `wait_for_trainer` is on), groups are started only once the
Solver's backlog is short enough that they will not be stale when trained on (`solver.backlog`).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

import msgspec

from sentinel_async.agents.episode import EpisodeConfig, EpisodeOutcome, EpisodeRunner
from sentinel_async.agents.pool import PoolConfig, TaskPool
from sentinel_async.agents.rollout import EpisodeJob, PolicyFactory, UserFactory, run_episodes
from sentinel_async.events import EpisodeFinished, Event, TaskProposed, TaskRegistered, TasksSampled
from sentinel_async.store import EventFilter, EventStore
from sentinel_async.tools.base import Domain, TaskSpec
from sentinel_async.tools.retail.evaluation import Evaluator

GUIDE_MAX_STEPS = 100
"""Messages a guide episode may take at least (tau2's limit): an expert cut short would teach a failure."""


class RolloutConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How many rounds, tasks per round and episodes per task (a GRPO group) the worker plays."""

    rounds: int = 4
    tasks_per_round: int = 4
    group_size: int = 4
    concurrency: int = 8
    seed: int = 0
    max_steps: int = 60
    """Messages per episode (the scripted expert needs up to 69 on the train split, 53 on test)."""
    max_errors: int = 10
    stream: str = "pool"
    expert_episodes: int = 0
    """Guide episodes per group, played before the group's own (0: none). A group then has
    `group_size + expert_episodes` members. Guides may take `max(max_steps, GUIDE_MAX_STEPS)` messages."""
    rename_guides: bool = False
    """Record each guide under a random other customer's name (the run's guide factory applies it)."""
    rename_guide_ids: bool = False
    """Record each guide with every id's digits renamed (orders, items, payment methods, user ids, zip codes), so
    it teaches copying the ids a conversation shows rather than the task's (the run's guide factory applies it)."""
    rename_guide_payment_kinds: bool = False
    """Record each guide with payment methods' kinds permuted (`paypal_1234567` -> `gift_card_1234567`), so it
    teaches copying the kind the conversation's ids show rather than the curriculum's most frequent one."""
    wait_for_trainer: bool = True
    """Hold groups back while the Solver is too far behind for them to be trained on in time (the run's gate,
    `batching.max_staleness`), instead of playing episodes it will drop as stale."""


TrainerGate = Callable[[int], Awaitable[object]]
"""Awaited before `n` groups start together; returns when the trainer has caught up enough for them."""


class RolloutWorker:
    """Plays rounds of grouped episodes on tasks the pool chooses; resumable from the log."""

    def __init__(
        self,
        store: EventStore,
        domain: Domain,
        *,
        run_id: str,
        make_policy: PolicyFactory,
        make_user: UserFactory,
        policy_version: Callable[[], int],
        config: RolloutConfig | None = None,
        pool_config: PoolConfig | None = None,
        on_done: Callable[[EpisodeOutcome], None] | None = None,
        make_guide: PolicyFactory | None = None,
        wait_for_trainer: TrainerGate | None = None,
    ) -> None:
        self.store = store
        self.domain = domain
        self.run_id = run_id
        self.make_policy = make_policy
        self.make_user = make_user
        self.policy_version = policy_version
        self.config = config or RolloutConfig()
        self.pool_config = pool_config or PoolConfig()
        self.on_done = on_done
        self.make_guide = make_guide
        self.wait_for_trainer = wait_for_trainer
        if self.config.expert_episodes > 0 and make_guide is None:
            raise ValueError("rollout.expert_episodes needs a guide factory (an expert for the domain's tasks)")
        evaluate = Evaluator(domain).evaluate
        self.runner = EpisodeRunner(
            domain=domain,
            config=EpisodeConfig(max_steps=self.config.max_steps, max_errors=self.config.max_errors),
            evaluate=evaluate,
        )
        guide_steps = max(self.config.max_steps, GUIDE_MAX_STEPS)
        self.guide_runner = EpisodeRunner(
            domain=domain,
            config=EpisodeConfig(max_steps=guide_steps, max_errors=self.config.max_errors),
            evaluate=evaluate,
        )

    def pool(self) -> TaskPool:
        """The pool as the log has it now."""
        pool = TaskPool(self.pool_config)
        wanted = EventFilter.of(types=["task_registered", "task_admitted", "task_retired", "episode_finished",
                                       "tasks_sampled"])  # fmt: skip
        for record in self.store.read(filter=wanted):
            pool.apply(record)
        return pool

    def task_specs(self) -> dict[str, TaskSpec]:
        """Every task the log knows (benchmark and proposed), by id."""
        specs: dict[str, TaskSpec] = {}
        for record in self.store.read(filter=EventFilter.of(types=[TaskRegistered, TaskProposed])):
            payload = record.payload
            if isinstance(payload, TaskRegistered | TaskProposed) and payload.spec:
                specs[payload.task_id] = msgspec.convert(payload.spec, TaskSpec)
        return specs

    async def next_round(self) -> TasksSampled:
        """Commit the pool's admissions and retirements, then the next round's sample (or the unfinished one)."""
        pool = self.pool()
        decisions: list[Event] = [*pool.admissions(), *pool.retirements()]
        if decisions:
            await self.store.append(self.config.stream, decisions)
            pool = self.pool()
        last = self.last_round()
        if last is not None and not self.finished(last):
            return last
        rng = random.Random(f"{self.config.seed}:{pool.rounds}")
        sampled = pool.sample(self.config.tasks_per_round, rng)
        await self.store.append(self.config.stream, [sampled])
        return sampled

    def last_round(self) -> TasksSampled | None:
        rounds = [r.payload for r in self.store.read(filter=EventFilter.of(types=[TasksSampled]))]
        return rounds[-1] if rounds and isinstance(rounds[-1], TasksSampled) else None

    def jobs(self, sampled: TasksSampled) -> list[EpisodeJob]:
        """The round's episodes: per task, its guide episodes (if any), then its group."""
        return [job for guides, own in self.groups(sampled) for job in (*guides, *own)]

    def groups(self, sampled: TasksSampled) -> list[tuple[list[EpisodeJob], list[EpisodeJob]]]:
        """Per sampled task: its guide episodes and its own (the policy's) episodes."""
        specs = self.task_specs()
        out: list[tuple[list[EpisodeJob], list[EpisodeJob]]] = []
        for index, chosen in enumerate(sampled.tasks):
            group = f"{self.run_id}-r{sampled.round}-{chosen.task_id}"
            base = self.config.seed * 1_000_003 + sampled.round * 10_007 + index * 101
            task = specs[chosen.task_id]
            guides = [
                EpisodeJob(task=task, trial=-1 - k, seed=base + 97 - k, episode_id=f"{group}-guide{k}", group_id=group)
                for k in range(self.config.expert_episodes)
            ]
            own = [
                EpisodeJob(task=task, trial=trial, seed=base + trial, episode_id=f"{group}-{trial}", group_id=group)
                for trial in range(self.config.group_size)
            ]
            out.append((guides, own))
        return out

    def finished(self, sampled: TasksSampled) -> bool:
        return not self.pending(self.jobs(sampled))

    async def play_round(self) -> TasksSampled:
        """Play one round (or finish an interrupted one).

        Without guides every group's episodes run concurrently. With guides, group after group: its guides, then
        its own episodes, so that a guide is played by the policy version its group is (a guide played at the
        round's start would be stale once earlier groups of the round had been trained on).
        """
        sampled = await self.next_round()
        if self.config.expert_episodes == 0:
            jobs = self.pending(self.jobs(sampled))
            await self.gate(len({job.group_id for job in jobs}))
            await self.play(jobs)
            return sampled
        for guides, own in self.groups(sampled):
            guides, own = self.pending(guides), self.pending(own)
            await self.gate(1 if guides or own else 0)
            await self.play(guides, guide=True)
            await self.play(own)
        return sampled

    async def gate(self, groups: int) -> None:
        """Wait for the trainer (when gated) before `groups` groups start."""
        if groups and self.wait_for_trainer is not None:
            await self.wait_for_trainer(groups)

    async def play(self, jobs: list[EpisodeJob], *, guide: bool = False) -> None:
        """Run `jobs` as the policy's own episodes, or as guide episodes."""
        if not jobs:
            return
        make_policy = self.make_guide if guide else self.make_policy
        assert make_policy is not None
        await run_episodes(
            self.guide_runner if guide else self.runner,
            jobs,
            make_policy=make_policy,
            make_user=self.make_user,
            store=self.store,
            concurrency=self.config.concurrency,
            policy_version=self.policy_version(),
            on_done=None if guide else self.on_done,
            buffered=True,
            purpose="guide" if guide else "train",
        )

    def pending(self, jobs: list[EpisodeJob]) -> list[EpisodeJob]:
        """The jobs whose episode is not in the log yet."""
        return [j for j in jobs if self.store.stream_version(f"episode-{j.episode_id}") == 0]

    async def run(self) -> None:
        """Play rounds until the configured number of rounds is in the log."""
        while True:
            last = self.last_round()
            done = 0 if last is None else last.round + int(self.finished(last))
            if done >= self.config.rounds:
                return
            await self.play_round()

    def finished_episodes(self) -> int:
        return sum(1 for _ in self.store.read(filter=EventFilter.of(types=[EpisodeFinished])))
