"""The deterministic failure analyser: the first deviation from the task's gold trajectory, with evidence.

How a failed episode is classified (first rule that fires):

1. The episode ended by a model-server or user-simulator fault: `system_error`.
2. Writes decide most failures. The trajectory's successful writes are aligned with the gold writes (those that
   succeed when the gold is replayed). Candidates, each at its turn: an executed write that deviates (wrong
   item / order / payment / reason / address / argument, missing items, item sequence, wrong tool, extra
   write); and, when gold writes never happened, what explains it: a refused write (`policy_violation` with
   the broken rule, checked on the replayed database, or the argument that differs), an unrecovered malformed
   call (`protocol_error`), a declined confirmation request that proposed the write with another value
   (`wrong_payment`, `wrong_item`, ... as for an executed write; `proposals`), a write without a yes
   (`no_confirmation`), a yes answered in text without the write (`missing_write`), a transfer the gold does
   not make (`premature_transfer`), no authentication at all (`missing_authentication`), the end
   (`max_steps`, `too_many_errors`, `premature_stop`). The earliest candidate wins (ties: in that order).
   Write candidates are skipped when the reward says the DB matched.
3. Otherwise: unexplained missing writes (`missing_lookup` when gold lookups were skipped, else
   `missing_write`), a non-scoring end, a refused write, unstated `communicate_info` (`missing_lookup` or
   `wrong_information`), a missing transfer, then any violation found (`no_confirmation`,
   `missing_authentication`, `protocol_error`), else `unknown`.

The other findings follow the deciding one in the evidence list.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import msgspec

from sentinel_async.agents.clients.qwen_format import tool_schemas
from sentinel_async.agents.controller.alignment import align_writes, classify_arguments, target
from sentinel_async.agents.controller.categories import FailureCategory
from sentinel_async.agents.controller.findings import Facts, Finding, decide, deviation, finding, protocol, unconfirmed
from sentinel_async.agents.controller.policy_checks import PreconditionCheck, retail_precondition
from sentinel_async.agents.controller.proposals import proposed_write
from sentinel_async.agents.controller.trajectory import FATAL_PROBLEMS, CallRecord, DeclinedRequest, parse_trajectory
from sentinel_async.agents.controller.trajectory import render_call as render
from sentinel_async.events import EpisodeFinished, Evidence, FailureDiagnosed
from sentinel_async.messages import ChatMessage, ToolCall
from sentinel_async.tools.base import Domain, TaskSpec
from sentinel_async.tools.retail.evaluation import communicate_check

__all__ = ["DeterministicAnalyser", "Diagnosis", "DomainRules", "FailureAnalyser", "FailureCategory", "subkey_of"]

_KEY = re.compile(r"^([a-z][a-z0-9_]*)[(:]")


class Diagnosis(msgspec.Struct, frozen=True, kw_only=True):
    """One failed episode's classification: category, one-line summary, evidence (deciding finding first)."""

    category: FailureCategory
    summary: str
    evidence: list[Evidence] = msgspec.field(default_factory=list)
    analyser: str = "deterministic"
    fallback_reason: str | None = None

    def to_event(self, task_id: str, episode_id: str) -> FailureDiagnosed:
        """The `FailureDiagnosed` event recording this diagnosis."""
        return FailureDiagnosed(
            episode_id=episode_id,
            task_id=task_id,
            category=self.category.value,
            summary=self.summary,
            evidence=list(self.evidence),
            analyser=self.analyser,
        )


def subkey_of(evidence: Sequence[Evidence]) -> str | None:
    """The pattern sub-key of a diagnosis: the tool (or protocol problem) its first evidence names."""
    if not evidence:
        return None
    for text in (evidence[0].expected, evidence[0].actual):
        match = _KEY.match(text or "")
        if match:
            return match.group(1)
    return None


class FailureAnalyser(Protocol):
    """Anything that diagnoses a failed episode."""

    async def diagnose(
        self,
        task: TaskSpec,
        messages: list[ChatMessage],
        finished: EpisodeFinished,
        domain: Domain,
        *,
        turns: Sequence[int] | None = None,
    ) -> Diagnosis: ...


class DomainRules(msgspec.Struct, frozen=True, kw_only=True):
    """Which tools authenticate, read user data, transfer, or need no gold match (retail defaults)."""

    auth_tools: frozenset[str] = frozenset({"find_user_id_by_email", "find_user_id_by_name_zip"})
    user_data_tools: frozenset[str] = frozenset({"get_user_details", "get_order_details"})
    transfer_tools: frozenset[str] = frozenset({"transfer_to_human_agents"})
    lookup_exempt: frozenset[str] = frozenset({"calculate", "list_all_product_types"})


class _Gold(msgspec.Struct, frozen=True, kw_only=True):
    writes: list[ToolCall]
    reads: list[ToolCall]
    transfers: bool


class DeterministicAnalyser:
    """Rule-based, explainable diagnosis (about a millisecond per episode). Thread-safe for reading."""

    name = "deterministic"

    def __init__(
        self,
        rules: DomainRules | None = None,
        *,
        precondition: PreconditionCheck | None = retail_precondition,
        max_evidence: int = 6,
    ) -> None:
        self.rules = rules or DomainRules()
        self.precondition = precondition
        self.max_evidence = max_evidence
        self._schemas: dict[str, dict[str, dict[str, Any]]] = {}
        self._gold: dict[tuple[str, str, bytes], _Gold] = {}
        self._items: dict[str, dict[str, str]] = {}

    async def diagnose(
        self,
        task: TaskSpec,
        messages: list[ChatMessage],
        finished: EpisodeFinished,
        domain: Domain,
        *,
        turns: Sequence[int] | None = None,
    ) -> Diagnosis:
        """`analyse`, as a `FailureAnalyser`."""
        return self.analyse(task, messages, finished, domain, turns=turns)

    def analyse(
        self,
        task: TaskSpec,
        messages: list[ChatMessage],
        finished: EpisodeFinished,
        domain: Domain,
        *,
        turns: Sequence[int] | None = None,
    ) -> Diagnosis:
        """Classify a failed episode. `turns[i]` is the recorded turn of `messages[i]` (default: the index)."""
        findings = decide(self.facts(task, messages, finished, domain, turns=turns))
        primary, others = findings[0], sorted(findings[1:], key=lambda f: f.turn)
        chosen = [primary, *others][: self.max_evidence]
        summary = primary.summary + (f" (+{len(others)} more findings)" if others else "")
        evidence = [
            Evidence(episode_id=finished.episode_id, turn=f.turn, expected=f.expected, actual=f.actual) for f in chosen
        ]
        return Diagnosis(category=primary.category, summary=summary, evidence=evidence, analyser=self.name)

    def facts(
        self,
        task: TaskSpec,
        messages: list[ChatMessage],
        finished: EpisodeFinished,
        domain: Domain,
        *,
        turns: Sequence[int] | None = None,
    ) -> Facts:
        """Every deviation the rules look for, before the decision."""
        is_write = _write_predicate(domain)
        trajectory = parse_trajectory(messages, self._tool_schemas(domain), is_write, turns)
        gold = self._gold_for(task, domain, is_write)
        calls = trajectory.calls
        ok_writes = [c for c in calls if c.problem is None and c.ok and is_write(c.call.name)]
        db_matched = finished.breakdown.get("db") == 1.0
        alignment = align_writes(ok_writes, [] if db_matched else gold.writes, self._describer(domain))
        deviations = (
            [] if db_matched else [deviation(d.category, d.record, d.gold, d.detail) for d in alignment.deviations]
        )
        auth_user, unauthenticated = self._authentication(calls, is_write)
        comm_failed = finished.breakdown.get("communicate") == 0.0 or (
            "communicate" not in finished.breakdown and finished.termination in ("user_stop", "agent_stop")
        )
        done_reads = {(c.call.name, _canon(c.call.arguments)) for c in calls if c.ok}
        return Facts(
            finished=finished,
            trajectory=trajectory,
            deviations=deviations,
            missing=alignment.missing,
            refused=self._refused_writes(calls, alignment.missing or gold.writes, domain, is_write),
            proposals=self._declined_proposals(trajectory.declined, alignment.missing, domain),
            protocol=[protocol(c) for c in calls if c.problem in FATAL_PROBLEMS and not _recovered(c, calls)],
            unconfirmed=[unconfirmed(c) for c in ok_writes if not c.confirmed],
            unauthenticated=unauthenticated,
            never_authenticated=auth_user is None and any(r.name in self.rules.auth_tools for r in gold.reads),
            failed_authentications=[c for c in calls if c.call.name in self.rules.auth_tools and not c.ok],
            transfers=[c for c in calls if c.ok and c.call.name in self.rules.transfer_tools],
            gold_transfers=gold.transfers,
            skipped_reads=[r for r in gold.reads if (r.name, _canon(r.arguments)) not in done_reads],
            missing_info=list(communicate_check(messages, task.communicate_info)) if comm_failed else [],
        )

    def _refused_writes(
        self, calls: list[CallRecord], gold_writes: list[ToolCall], domain: Domain, is_write: Callable[[str], bool]
    ) -> list[Finding]:
        """Writes the tools refused, named by the policy rule they break (checked on the replayed state)."""
        failed = [c for c in calls if c.problem is None and c.error and is_write(c.call.name)]
        if not failed:
            return []
        rules = self._replay_rules(calls, domain, is_write)
        findings: list[Finding] = []
        for record in failed:
            rule = rules.get(id(record))
            outcome = f"{render(record.call)} -> {(record.result or '').strip()[:160]}"
            counterpart = next(
                (g for g in gold_writes if g.name == record.call.name and target(g) == target(record.call)), None
            )
            counterpart = counterpart or next((g for g in gold_writes if g.name == record.call.name), None)
            diff = None
            if counterpart is not None and rule is None:
                diff = classify_arguments(
                    record.call.name, counterpart.arguments, record.call.arguments, self._describer(domain)
                )
            name = record.call.name
            if diff is not None and counterpart is not None:
                summary = f"{name} at turn {record.turn} failed: {diff.detail}"
                findings.append(finding(diff.category, record.turn, "refused", summary, render(counterpart), outcome))
                continue
            summary = f"{name} at turn {record.turn} breaks the policy: {rule or (record.result or '').strip()[:160]}"
            expected = f"{name}: {rule or 'a write the tools accept'}"
            findings.append(
                finding(FailureCategory.POLICY_VIOLATION, record.turn, "refused", summary, expected, outcome)
            )
        return findings

    def _declined_proposals(
        self, declined: list[DeclinedRequest], missing: list[ToolCall], domain: Domain
    ) -> list[Finding]:
        """Declined confirmation requests that proposed a missing gold write with other values (`proposals`)."""
        findings: list[Finding] = []
        describe = self._describer(domain)
        for request in declined:
            for gold in missing:
                proposed = proposed_write(request.agent_text, gold)
                if proposed is None:
                    continue
                diff = classify_arguments(gold.name, gold.arguments, proposed.arguments, describe)
                if diff is None:
                    continue
                summary = f"{gold.name} proposed at turn {request.turn} and declined: {diff.detail}"
                actual = f"proposed {render(proposed)}; the user answered {request.user_text[:120]!r}"
                findings.append(finding(diff.category, request.turn, "proposal", summary, render(gold), actual))
                break
        return findings

    def _replay_rules(self, calls: list[CallRecord], domain: Domain, is_write: Callable[[str], bool]) -> dict[int, str]:
        """Replay the answered calls on a fresh environment; the broken rule before each write, by record id."""
        if self.precondition is None:
            return {}
        env = domain.new_environment()
        db = getattr(env, "db", None)
        user_id: str | None = None
        broken: dict[int, str] = {}
        for record in calls:
            if record.result is None or record.problem is not None:
                continue
            if db is not None and is_write(record.call.name):
                rule = self.precondition(db, record.call.name, record.call.arguments, user_id)
                if rule is not None:
                    broken[id(record)] = rule
            outcome = env.call(record.call)
            if record.call.name in self.rules.auth_tools and not outcome.error and user_id is None:
                user_id = outcome.content.strip().strip('"')
        return broken

    def _authentication(
        self, calls: list[CallRecord], is_write: Callable[[str], bool]
    ) -> tuple[str | None, list[Finding]]:
        """The authenticated user id, and the user-data reads or writes made before authentication."""
        user_id: str | None = None
        findings: list[Finding] = []
        for record in calls:
            name = record.call.name
            if name in self.rules.auth_tools and record.ok and user_id is None:
                user_id = (record.result or "").strip().strip('"')
            elif user_id is None and record.problem is None and (name in self.rules.user_data_tools or is_write(name)):
                summary = f"{name} at turn {record.turn} before the user was authenticated"
                expected = "find_user_id_by_email or find_user_id_by_name_zip first"
                category = FailureCategory.MISSING_AUTHENTICATION
                findings.append(finding(category, record.turn, "auth", summary, expected, render(record.call)))
        return user_id, findings[:1]

    # --- caches ------------------------------------------------------------------------------------------

    def _tool_schemas(self, domain: Domain) -> dict[str, dict[str, Any]]:
        schemas = self._schemas.get(domain.name)
        if schemas is None:
            schemas = self._schemas[domain.name] = tool_schemas(domain.tool_schemas())
        return schemas

    def _gold_for(self, task: TaskSpec, domain: Domain, is_write: Callable[[str], bool]) -> _Gold:
        """The gold calls that succeed when the gold is replayed in order (failing ones change nothing)."""
        key = (domain.name, task.id, msgspec.json.encode(task.gold_actions))
        cached = self._gold.get(key)
        if cached is not None:
            return cached
        env = domain.new_environment()
        writes: list[ToolCall] = []
        reads: list[ToolCall] = []
        transfers = False
        for index, action in enumerate(task.gold_actions):
            if action.requestor != "assistant":
                continue
            call = ToolCall(id=f"gold_{index}", name=action.name, arguments=dict(action.arguments))
            if env.call(call).error:
                continue
            if action.name in self.rules.transfer_tools:
                transfers = True
            elif is_write(action.name):
                writes.append(call)
            elif action.name not in self.rules.lookup_exempt:
                reads.append(call)
        gold = self._gold[key] = _Gold(writes=writes, reads=reads, transfers=transfers)
        return gold

    def _describer(self, domain: Domain) -> Callable[[Any], str]:
        """Item id -> `id (product, options)` when the domain has a product catalogue."""
        items = self._items.get(domain.name)
        if items is None:
            items = {}
            for product in getattr(domain, "products", {}).values():
                for item_id, variant in getattr(product, "variants", {}).items():
                    options = "/".join(str(v) for v in getattr(variant, "options", {}).values())
                    items[str(item_id)] = f"{product.name}, {options}"
            self._items[domain.name] = items
        table = items
        return lambda item_id: f"{item_id} ({table[str(item_id)]})" if str(item_id) in table else str(item_id)


def _write_predicate(domain: Domain) -> Callable[[str], bool]:
    is_write: Callable[[str], bool] | None = getattr(domain, "is_write_tool", None)
    return is_write if is_write is not None else (lambda name: True)


def _canon(arguments: dict[str, Any]) -> bytes:
    return msgspec.json.encode(arguments, order="sorted")


def _recovered(record: CallRecord, calls: list[CallRecord]) -> bool:
    """A malformed call is recovered when a later call with the same values (or tool and target) succeeded."""
    if record.problem == "unparsable":
        following = next((c for c in calls if c.index > record.index), None)
        return following is not None and following.ok
    values = sorted(map(str, record.call.arguments.values()))
    for c in calls:
        if c.index <= record.index or not c.ok:
            continue
        if values and sorted(map(str, c.call.arguments.values())) == values:
            return True
        if c.call.name == record.call.name and str(target(c.call)) in values:
            return True
    return False
