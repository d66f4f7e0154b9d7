"""An optional LLM failure analyser on an OpenAI-compatible server, falling back to the deterministic one.

The prompt holds the categories, the task (instructions, gold actions, information to communicate), the
reward breakdown, the trajectory with turn numbers and the deterministic analyser's verdict as a hint. The
model must answer one JSON object `{"category", "summary", "evidence": [{"turn", "expected", "actual"}]}`,
validated with msgspec (the category must be a `FailureCategory`). On invalid output or a model-server error
the deterministic diagnosis is returned with `analyser="deterministic-fallback"` and the reason.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import msgspec

from sentinel_async.agents.clients import ChatClient, ModelServerError
from sentinel_async.agents.clients.qwen_format import split_think
from sentinel_async.agents.controller.analyser import DeterministicAnalyser, Diagnosis
from sentinel_async.agents.controller.categories import FailureCategory
from sentinel_async.agents.controller.trajectory import render_call
from sentinel_async.events import EpisodeFinished, Evidence
from sentinel_async.messages import ChatMessage
from sentinel_async.tools.base import Domain, TaskSpec

FALLBACK = "deterministic-fallback"


class LLMEvidence(msgspec.Struct, frozen=True, kw_only=True):
    """One piece of evidence as the model reports it."""

    turn: int | None = None
    expected: str | None = None
    actual: str | None = None


class LLMVerdict(msgspec.Struct, frozen=True, kw_only=True):
    """The JSON object the model must answer with."""

    category: FailureCategory
    summary: str
    evidence: list[LLMEvidence] = msgspec.field(default_factory=list)


_DECODER = msgspec.json.Decoder(LLMVerdict)
_SYSTEM = """You analyse why a customer-service agent failed a task in a tool-using benchmark (Tau2-Bench retail).
Find the FIRST deviation from the gold trajectory that made the episode fail, and classify it.
Writes that deviate decide most failures; reads rarely matter.
Answer with ONE JSON object and nothing else, matching this JSON schema:
{schema}
Categories: {categories}"""


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def render_trajectory(messages: Sequence[ChatMessage], turns: Sequence[int] | None, limit: int = 400) -> str:
    """The conversation, one line per message, with turn numbers (system prompt left out)."""
    lines = []
    for index, message in enumerate(messages):
        if message.role == "system":
            continue
        turn = turns[index] if turns is not None else index
        text = _truncate(message.content.strip(), limit)
        if message.role == "assistant" and message.tool_calls:
            calls = "; ".join(render_call(c, limit) for c in message.tool_calls)
            text = f"{text} [calls: {calls}]" if text else f"[calls: {calls}]"
        elif message.role == "tool":
            text = f"{message.name or 'tool'}{' ERROR' if message.error else ''} -> {text}"
        lines.append(f"turn {turn} {message.role}: {text}")
    return "\n".join(lines)


class LLMAnalyser:
    """Diagnoses through a chat model; never raises on model trouble (falls back to `fallback`)."""

    name = "llm"

    def __init__(
        self,
        client: ChatClient,
        *,
        fallback: DeterministicAnalyser | None = None,
        include_hint: bool = True,
        max_message_chars: int = 400,
    ) -> None:
        self.client = client
        self.fallback = fallback or DeterministicAnalyser()
        self.include_hint = include_hint
        self.max_message_chars = max_message_chars

    def prompt(
        self,
        task: TaskSpec,
        messages: Sequence[ChatMessage],
        finished: EpisodeFinished,
        hint: Diagnosis | None,
        turns: Sequence[int] | None,
    ) -> list[dict[str, str]]:
        """The chat messages sent to the model."""
        schema = json.dumps(msgspec.json.schema(LLMVerdict))
        system = _SYSTEM.format(schema=schema, categories=", ".join(c.value for c in FailureCategory))
        instructions = task.user_scenario.instructions
        request = instructions if isinstance(instructions, str) else msgspec.json.encode(instructions).decode()
        gold = [{"name": a.name, "arguments": a.arguments} for a in task.gold_actions]
        parts = [
            f"Task {task.id}. User instructions: {request}",
            f"Gold actions: {json.dumps(gold)}",
            f"Information the agent must tell the user: {json.dumps(task.communicate_info)}",
            f"Episode ended by {finished.termination}; reward {finished.reward}; breakdown {finished.breakdown}",
            "Trajectory:\n" + render_trajectory(messages, turns, self.max_message_chars),
        ]
        if hint is not None:
            parts.append(f"A rule-based analyser says: {hint.category.value}: {hint.summary}")
        return [{"role": "system", "content": system}, {"role": "user", "content": "\n\n".join(parts)}]

    async def diagnose(
        self,
        task: TaskSpec,
        messages: list[ChatMessage],
        finished: EpisodeFinished,
        domain: Domain,
        *,
        turns: Sequence[int] | None = None,
    ) -> Diagnosis:
        """The model's diagnosis, or the deterministic one (marked as a fallback) when the model fails."""
        rules = self.fallback.analyse(task, messages, finished, domain, turns=turns)
        prompt = self.prompt(task, messages, finished, rules if self.include_hint else None, turns)
        try:
            choice, _ = await self.client.complete(prompt)
        except ModelServerError as exc:
            return _fall_back(rules, f"model server error: {exc}")
        verdict = parse_verdict(choice.message.content or "")
        if isinstance(verdict, str):
            return _fall_back(rules, verdict)
        evidence = [
            Evidence(episode_id=finished.episode_id, turn=e.turn, expected=e.expected, actual=e.actual)
            for e in verdict.evidence
        ] or list(rules.evidence)
        return Diagnosis(category=verdict.category, summary=verdict.summary, evidence=evidence, analyser=self.name)


def parse_verdict(content: str) -> LLMVerdict | str:
    """The model's JSON verdict (reasoning and code fences stripped), or why it is invalid."""
    _, text, _ = split_think(content)
    text = text.strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    try:
        return _DECODER.decode(text)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return f"invalid model output ({exc}): {_truncate(content, 200)!r}"


def _fall_back(diagnosis: Diagnosis, reason: str) -> Diagnosis:
    return msgspec.structs.replace(diagnosis, analyser=FALLBACK, fallback_reason=reason)
