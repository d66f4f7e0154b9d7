"""The Proposer: failure patterns in, verified tasks (or rejections with a reason) out, exactly once.

`propose(pattern, n, rng)` is the plain API (scripts, tests, benchmarks). The `Proposer` agent subscribes to
`FailurePatternsUpdated` as consumer "proposer"; for each pattern (or, in `general` mode, for the event as a
whole) it generates candidates, verifies and deduplicates them, and commits `TaskProposed` + `TaskRegistered`
(stream `task-retail-<id>`) or `TaskRejected` events together with its cursor in one transaction. Candidate
generation is seeded by (seed, event position, pattern id), so a redo after a crash proposes the same tasks.
"""

from __future__ import annotations

import hashlib
import random
import time
from typing import Any, Literal

import anyio
import msgspec

from sentinel_async.agents.proposer.generators import Recipe, generate
from sentinel_async.agents.proposer.sampling import RecordPool
from sentinel_async.agents.proposer.scenario import task_id_for, write_task
from sentinel_async.agents.proposer.signature import benchmark_signatures, replay_changes, signature_parts
from sentinel_async.agents.proposer.targets import Difficulty, family, recipe_for
from sentinel_async.agents.proposer.verify import Verification, verify
from sentinel_async.bus import subscribe
from sentinel_async.events import (
    FailurePattern,
    FailurePatternsUpdated,
    NewEvent,
    RecordedEvent,
    TaskLineage,
    TaskProposed,
    TaskRegistered,
    TaskRejected,
    TaskSource,
)
from sentinel_async.store import NO_STREAM, CursorUpdate, EventFilter, EventStore, StreamAppend
from sentinel_async.tools.base import TaskSpec
from sentinel_async.tools.retail import RetailDomain
from sentinel_async.tools.retail.evaluation import Evaluator

Mode = Literal["targeted", "general"]


class ProposerConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How the Proposer works. `candidates_per_pattern`: candidates generated per targeted pattern (general
    mode generates the same total per event, untargeted)."""

    mode: Mode = "targeted"
    candidates_per_pattern: int = 4
    difficulty: Difficulty = "stress"
    """How hard targeted tasks are (`targets.Difficulty`)."""
    aim_at_tool: bool = True
    """Narrow a pattern's recipes to the request its tool fulfils (`targets.focus`)."""
    seed: int = 0
    consumer: str = "proposer"
    stream: str = "proposals-retail"
    check_tau2: bool = True
    check_scripted: bool = True
    skip_resolved: bool = True
    reject_item_order_sensitive: bool = False
    max_users: int = 60


class Candidate(msgspec.Struct, frozen=True, kw_only=True):
    """One generated candidate and its fate: accepted with its task, or rejected with a reason."""

    candidate_id: str
    recipe: str
    kinds: tuple[str, ...]
    category: str | None
    accepted: bool = False
    reason: str | None = None
    detail: str = ""
    signature: str | None = None
    task: TaskSpec | None = None
    verification: Verification | None = None
    seconds: float = 0.0


class ProposalEngine:
    """Generates, verifies and deduplicates candidates against the benchmark and earlier proposals."""

    def __init__(self, domain: RetailDomain | None = None, config: ProposerConfig | None = None) -> None:
        self.domain = domain or RetailDomain()
        self.config = config or ProposerConfig()
        self.pool = RecordPool.of(self.domain)
        self.evaluator = Evaluator(self.domain)
        self.benchmark = benchmark_signatures(self.domain)
        self.seen: set[str] = set()
        self.used_users: list[str] = []

    def remember(self, signatures: list[str]) -> None:
        """Mark signatures as proposed (dedup against them from now on)."""
        self.seen.update(signatures)

    def propose(
        self, pattern: FailurePattern | None, n: int, rng: random.Random, *, remember: bool = True
    ) -> list[Candidate]:
        """`n` candidates for a pattern (None: untargeted `general` ones), each accepted or rejected."""
        targeted = pattern if self.config.mode == "targeted" else None
        category = targeted.category if targeted is not None else None
        tool = targeted.subkey if targeted is not None and self.config.aim_at_tool else None
        batch: set[str] = set()
        out = []
        for _ in range(n):
            candidate = self._one(category, tool, pattern, rng, batch)
            if candidate.accepted and candidate.signature is not None:
                batch.add(candidate.signature)
            out.append(candidate)
        if remember:
            self.remember(sorted(batch))
        return out

    def _one(
        self,
        category: str | None,
        tool: str | None,
        pattern: FailurePattern | None,
        rng: random.Random,
        batch: set[str],
    ) -> Candidate:
        started = time.perf_counter()
        recipe = recipe_for(category, rng, self.config.difficulty, tool)
        candidate_id = f"cand-{rng.getrandbits(48):012x}"
        base = Candidate(candidate_id=candidate_id, recipe=recipe.label, kinds=recipe.kinds, category=category)

        def reject(
            reason: str, detail: str = "", signature: str | None = None, verification: Verification | None = None
        ) -> Candidate:
            elapsed = time.perf_counter() - started
            return msgspec.structs.replace(
                base, reason=reason, detail=detail, signature=signature, verification=verification, seconds=elapsed
            )

        sub_rng = random.Random(rng.random())
        draft = generate(
            self.domain, self.pool, recipe, sub_rng, max_users=self.config.max_users, avoid=tuple(self.used_users)
        )
        if draft is None:
            return reject("no_state", f"no allowed user's state fits recipe {recipe.label}")
        parts = signature_parts(draft.actions, replay_changes(self.domain, draft.actions), draft.communicate_info)
        signature = parts.signature
        if signature in self.benchmark:
            return reject("duplicate", "same signature as a benchmark task", signature=signature)
        if signature in self.seen or signature in batch:
            return reject("duplicate", f"same signature as proposed task {task_id_for(signature)}", signature=signature)
        task = write_task(draft, signature, purpose=_purpose(recipe, pattern, self.config.mode))
        checks = {"check_tau2": self.config.check_tau2, "check_scripted": self.config.check_scripted}
        result = verify(self.domain, self.pool, draft, task, self.evaluator, **checks)
        if result.ok and self.config.reject_item_order_sensitive and result.checks.get("item_order_sensitive"):
            result = msgspec.structs.replace(result, ok=False, reason="item_order_sensitive", detail="tau2 price noise")
        if not result.ok:
            return reject(result.reason or "unverified", result.detail, signature=signature, verification=result)
        self.used_users.append(draft.user_id)
        elapsed = time.perf_counter() - started
        return msgspec.structs.replace(
            base, accepted=True, signature=signature, task=task, verification=result, seconds=elapsed
        )


def _purpose(recipe: Recipe, pattern: FailurePattern | None, mode: Mode) -> str:
    if pattern is None or mode == "general":
        return f"General (untargeted) task: {', '.join(recipe.kinds)} ({recipe.label})."
    fam = family(pattern.category) or "general"
    return (
        f"Targets failure pattern {pattern.pattern_id} ({pattern.category}; recipe family {fam}): "
        f"{recipe.label}. {pattern.description}"
    )


def propose(
    pattern: FailurePattern | None,
    n: int,
    rng: random.Random,
    *,
    engine: ProposalEngine | None = None,
    config: ProposerConfig | None = None,
) -> list[Candidate]:
    """Generate and verify `n` candidates for a pattern (None: general). Reuse `engine` to dedup across calls."""
    return (engine or ProposalEngine(config=config)).propose(pattern, n, rng)


def general_tasks(domain: RetailDomain, n: int, seed: int) -> list[TaskSpec]:
    """`n` verified general (untargeted) tasks, seeded; tau2's scorer is skipped (the scripted check stays).

    The bootstrap's source of extra demonstrations (`DemoConfig.general_tasks`); never touches test records.
    """
    engine = ProposalEngine(domain, ProposerConfig(mode="general", check_tau2=False))
    rng = random.Random(seed)
    tasks: list[TaskSpec] = []
    for _ in range(4):  # a few rounds cover the rare rejections (duplicates, no fitting state)
        tasks.extend(c.task for c in engine.propose(None, n - len(tasks), rng) if c.task is not None)
        if len(tasks) >= n:
            break
    return tasks


def _digest(*parts: object) -> str:
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:16]


class Proposer:
    """The async agent: subscribes to `FailurePatternsUpdated` and commits proposals exactly once."""

    def __init__(self, store: EventStore, engine: ProposalEngine | None = None, config: ProposerConfig | None = None):
        self.store = store
        self.config = config or (engine.config if engine else ProposerConfig())
        self.engine = engine or ProposalEngine(config=self.config)
        self._loaded = False

    def load(self) -> None:
        """Rebuild the dedup set from the proposals already in the log."""
        for record in self.store.read(filter=EventFilter.of(types=[TaskProposed])):
            assert isinstance(record.payload, TaskProposed)
            self.engine.remember([record.payload.signature])
        self._loaded = True

    async def run(self, *, follow: bool = True) -> int:
        """Handle pattern updates after the cursor (until cancelled, or the head when `follow=False`)."""
        if not self._loaded:
            self.load()
        handled = 0
        types = EventFilter.of(types=[FailurePatternsUpdated])
        async with subscribe(self.store, consumer=self.config.consumer, filter=types, follow=follow) as events:
            async for record in events:
                await self.handle(record)
                handled += 1
        return handled

    async def handle(self, record: RecordedEvent) -> list[Candidate]:
        """Propose for one event and commit the outcome with the cursor (nothing else is written)."""
        candidates = await anyio.to_thread.run_sync(self.candidates_for, record)
        appends = self.appends(record, candidates)
        await self.store.commit(appends, cursor=CursorUpdate(self.config.consumer, record.position))
        self.engine.remember([c.signature for c, _ in candidates if c.accepted and c.signature])
        return [c for c, _ in candidates]

    def candidates_for(self, record: RecordedEvent) -> list[tuple[Candidate, FailurePattern | None]]:
        payload = record.payload
        assert isinstance(payload, FailurePatternsUpdated)
        config = self.config
        patterns = [p for p in payload.patterns if not (config.skip_resolved and p.status == "resolved")]
        out: list[tuple[Candidate, FailurePattern | None]] = []
        if config.mode == "general":
            rng = random.Random(_digest(config.seed, record.position, "general"))
            total = config.candidates_per_pattern * max(1, len(patterns))
            return [(c, None) for c in self.engine.propose(None, total, rng, remember=False)]
        for pattern in patterns:
            rng = random.Random(_digest(config.seed, record.position, pattern.pattern_id))
            out.extend(
                (c, pattern) for c in self.engine.propose(pattern, config.candidates_per_pattern, rng, remember=False)
            )
        return out

    def appends(
        self, record: RecordedEvent, candidates: list[tuple[Candidate, FailurePattern | None]]
    ) -> list[StreamAppend]:
        """The events for one handled record: one proposal/rejection per candidate, one registration per task."""

        def wrap(event: Any) -> NewEvent:
            return NewEvent(payload=event, causation_id=record.event_id, correlation_id=record.correlation_id)

        source: TaskSource = "general" if self.config.mode == "general" else "proposed"
        outputs: list[NewEvent] = []
        registrations: list[StreamAppend] = []
        taken: set[str] = set()
        for candidate, pattern in candidates:
            pattern_id = pattern.pattern_id if pattern else None
            task = candidate.task
            stream = f"task-{self.engine.domain.name}-{task.id}" if task else ""
            if task is None or not candidate.accepted or task.id in taken or self.store.stream_version(stream) != 0:
                reason = candidate.reason or "duplicate"
                detail = candidate.detail or f"task {task.id if task else '?'} is already registered"
                outputs.append(
                    wrap(
                        TaskRejected(
                            candidate_id=candidate.candidate_id, reason=reason, detail=detail, pattern_id=pattern_id
                        )
                    )
                )
                continue
            taken.add(task.id)
            lineage = TaskLineage(
                pattern_id=pattern_id,
                episode_ids=list(pattern.episode_ids) if pattern else [],
                generator=candidate.recipe,
            )
            spec = msgspec.to_builtins(task)
            verification = msgspec.to_builtins(candidate.verification.checks) if candidate.verification else {}
            verification |= {
                "candidate_id": candidate.candidate_id,
                "recipe": candidate.recipe,
                "kinds": list(candidate.kinds),
            }
            proposed = TaskProposed(
                task_id=task.id,
                domain=self.engine.domain.name,
                spec=spec,
                signature=candidate.signature or "",
                lineage=lineage,
                verification=verification,
            )
            outputs.append(wrap(proposed))
            registered = TaskRegistered(
                task_id=task.id, domain=self.engine.domain.name, source=source, spec=spec, lineage=lineage
            )
            registrations.append(StreamAppend(stream_id=stream, events=[wrap(registered)], expected_version=NO_STREAM))
        return (
            [StreamAppend(stream_id=self.config.stream, events=outputs), *registrations] if outputs else registrations
        )
