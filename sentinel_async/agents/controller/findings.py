"""Findings (one deviation each, at a turn) and the rule that picks the deciding one; see `analyser`."""

from __future__ import annotations

import msgspec

from sentinel_async.agents.controller.alignment import target
from sentinel_async.agents.controller.categories import FailureCategory
from sentinel_async.agents.controller.trajectory import CallRecord, StyleIssue, Trajectory
from sentinel_async.agents.controller.trajectory import render_call as render
from sentinel_async.events import EpisodeFinished
from sentinel_async.messages import ToolCall

C = FailureCategory
_RANK = {
    kind: rank
    for rank, kind in enumerate(
        ["write", "refused", "proposal", "protocol", "confirm", "skipped", "transfer", "auth", "end"]
    )
}


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    """One deviation: its category, turn, kind (for tie-breaks), summary and expected vs actual."""

    category: FailureCategory
    turn: int
    kind: str
    summary: str
    expected: str | None = None
    actual: str | None = None


def finding(category: C, turn: int, kind: str, summary: str, expected: str | None, actual: str | None) -> Finding:
    """A `Finding`, positionally."""
    return Finding(category=category, turn=turn, kind=kind, summary=summary, expected=expected, actual=actual)


class Facts(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the decision needs, gathered by the analyser."""

    finished: EpisodeFinished
    trajectory: Trajectory
    deviations: list[Finding]
    missing: list[ToolCall]
    refused: list[Finding]
    proposals: list[Finding]
    """Confirmation requests the user declined whose proposed write differs from a missing gold write."""
    protocol: list[Finding]
    unconfirmed: list[Finding]
    unauthenticated: list[Finding]
    never_authenticated: bool
    failed_authentications: list[CallRecord]
    """Authentication lookups that failed (named in the evidence when the user was never authenticated)."""
    transfers: list[CallRecord]
    gold_transfers: bool
    skipped_reads: list[ToolCall]
    missing_info: list[str]


def deviation(category: C, record: CallRecord, gold: ToolCall | None, detail: str) -> Finding:
    """An executed write that differs from its gold (or has none)."""
    where = f" on {target(record.call)}" if target(record.call) is not None else ""
    expected = render(gold) if gold is not None else "no such write (the task does not call for it)"
    summary = f"{record.call.name}{where} at turn {record.turn}: {detail}"
    return finding(category, record.turn, "write", summary, expected, render(record.call))


def unconfirmed(record: CallRecord) -> Finding:
    """A write without an explicit yes to a confirmation request."""
    name = record.call.name
    summary = f"{name} at turn {record.turn} without an explicit yes (the user said {record.user_text[:120]!r})"
    expected = f"an explicit yes to a confirmation request listing the details, before {name}"
    return finding(C.NO_CONFIRMATION, record.turn, "confirm", summary, expected, render(record.call))


def protocol(record: CallRecord) -> Finding:
    """A malformed call that was never recovered."""
    summary = f"malformed call at turn {record.turn} never recovered: {record.problem_detail}"
    actual = f"{record.problem}: {render(record.call)}"
    if record.problem == "unparsable" and record.result:  # the parser's message says what was wrong
        actual = f"{record.problem}: {record.result}"
    return finding(C.PROTOCOL_ERROR, record.turn, "protocol", summary, "a well-formed call of an offered tool", actual)


def style(issue: StyleIssue) -> Finding:
    """Text with a tool call, or several calls, in one turn."""
    summary = f"{issue.kind} at turn {issue.turn}"
    expected = "one tool call or one message per turn"
    return finding(C.PROTOCOL_ERROR, issue.turn, "protocol", summary, expected, f"{issue.kind}: {issue.detail}")


def lookup(read: ToolCall, end: int, because: str = "") -> Finding:
    """A gold lookup the agent never made."""
    summary = f"the gold lookup {read.name} was never made" + (f" {because}" if because else "")
    return finding(C.MISSING_LOOKUP, end, "end", summary, render(read), "no such lookup")


def info(text: str, end: int, trajectory: Trajectory) -> Finding:
    """A `communicate_info` string no assistant message states."""
    turn, last = trajectory.assistant_texts[-1] if trajectory.assistant_texts else (end, "")
    actual = f"last message: {last[:200]!r}" if last else "no assistant message"
    return finding(
        C.WRONG_INFORMATION,
        turn,
        "end",
        f"the agent never told the user {text!r}",
        f"a message stating {text!r}",
        actual,
    )


def transfer(record: CallRecord, expected: str) -> Finding:
    summary = f"transferred to a human at turn {record.turn} although the task is in scope"
    return finding(C.PREMATURE_TRANSFER, record.turn, "transfer", summary, expected, render(record.call))


def ending(finished: EpisodeFinished, end: int, expected: str | None) -> Finding | None:
    """The finding for how the episode ended, when the end itself is a failure."""
    steps = finished.info.get("steps", "?")
    errors = finished.info.get("tool_errors", "?")
    if finished.termination == "max_steps":
        summary = f"the episode hit the step limit ({steps} steps) before finishing"
        return finding(C.MAX_STEPS, end, "end", summary, expected or "a stop within the step limit", "max_steps")
    if finished.termination == "too_many_errors":
        summary = f"the episode ended after {errors} tool errors"
        return finding(C.TOO_MANY_ERRORS, end, "end", summary, expected or "fewer tool errors", "too_many_errors")
    if finished.termination == "agent_stop" and expected is not None:
        summary = f"the agent ended the conversation at turn {end} before the task's writes"
        return finding(C.PREMATURE_STOP, end, "end", summary, expected, "###STOP### from the agent")
    return None


def decide(facts: Facts) -> list[Finding]:
    """The deciding finding first, then every other finding."""
    end = facts.trajectory.last_turn
    termination = facts.finished.termination
    if termination in ("agent_error", "user_error"):
        who = "the policy's model server" if termination == "agent_error" else "the user simulator"
        summary = f"the episode ended with {termination}: {who} failed"
        system = finding(C.SYSTEM_ERROR, end, "end", summary, "an end by the agent or the user", termination)
        return [system, *facts.deviations]
    candidates = list(facts.deviations)
    if facts.missing:
        candidates += _explanations(facts, end)
    primary = min(candidates, key=lambda f: (f.turn, _RANK[f.kind])) if candidates else _fallback(facts, end)
    secondary = [
        *facts.deviations,
        *facts.refused,
        *facts.proposals,
        *facts.protocol,
        *facts.unconfirmed,
        *facts.unauthenticated,
    ]
    secondary += [lookup(r, end) for r in facts.skipped_reads[:2]]
    secondary += [info(text, end, facts.trajectory) for text in facts.missing_info]
    secondary += [style(issue) for issue in facts.trajectory.style_issues]
    return [primary, *(f for f in secondary if f != primary)]


def _explanations(facts: Facts, end: int) -> list[Finding]:
    """What can explain gold writes that never happened, each at its turn."""
    first = render(facts.missing[0])
    found = [*facts.refused, *facts.proposals, *facts.protocol, *facts.unconfirmed]
    for skip in facts.trajectory.skipped_writes:
        name = facts.missing[0].name
        summary = f"the user said yes at turn {skip.turn}, the agent answered in text and never called {name}"
        actual = f"text without a write after the yes: {skip.agent_text[:150]!r}"
        found.append(finding(C.MISSING_WRITE, skip.turn, "skipped", summary, first, actual))
    if not facts.gold_transfers:
        found += [transfer(t, first) for t in facts.transfers]
    if facts.never_authenticated:
        summary = "the user was never authenticated, so the task's writes never happened"
        expected = "find_user_id_by_email or find_user_id_by_name_zip before any user data"
        attempts = facts.failed_authentications
        actual = "no authentication attempt"
        if attempts:
            last = attempts[-1]
            tried = f"{len(attempts)} failed lookups, the last" if len(attempts) > 1 else "one failed lookup"
            actual = f"{tried}: {render(last.call)} -> {(last.result or 'no answer')[:120]}"
        found.append(finding(C.MISSING_AUTHENTICATION, end, "auth", summary, expected, actual))
    end_finding = ending(facts.finished, end, first)
    return [*found, end_finding] if end_finding is not None else found


def _fallback(facts: Facts, end: int) -> Finding:
    """No write deviation and nothing explained: the first other failure, in the documented order."""
    if facts.missing:
        name = facts.missing[0].name
        if facts.skipped_reads:
            return lookup(facts.skipped_reads[0], end, because=f"and {name} never happened")
        return finding(C.MISSING_WRITE, end, "end", f"{name} was never called", render(facts.missing[0]), "no write")
    end_finding = ending(facts.finished, end, None)
    if end_finding is not None:
        return end_finding
    if facts.refused:
        return facts.refused[0]
    if facts.missing_info:
        if facts.skipped_reads:
            return lookup(facts.skipped_reads[0], end, because=f"and {facts.missing_info[0]!r} was never stated")
        return info(facts.missing_info[0], end, facts.trajectory)
    if facts.gold_transfers and not facts.transfers:
        summary = "the task needs a transfer to a human agent and none happened"
        return finding(C.MISSING_TRANSFER, end, "end", summary, "transfer_to_human_agents(...)", "no transfer")
    if facts.transfers and not facts.gold_transfers:
        return transfer(facts.transfers[0], "no transfer")
    for group in (facts.unconfirmed, facts.unauthenticated, facts.protocol):
        if group:
            return group[0]
    if facts.trajectory.style_issues:
        return style(facts.trajectory.style_issues[0])
    parts = ", ".join(f"{k}={v}" for k, v in sorted(facts.finished.breakdown.items())) or "no breakdown"
    summary = f"no deviation from the gold found (reward {facts.finished.reward}; {parts})"
    return finding(C.UNKNOWN, end, "end", summary, "reward 1", f"reward {facts.finished.reward}")
