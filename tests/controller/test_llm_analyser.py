"""The LLM analyser against a fake vLLM server: valid JSON is used, anything else falls back to the rules."""

from __future__ import annotations

import json

import pytest

from sentinel_async.agents.clients import ChatClient, ClientConfig
from sentinel_async.agents.controller import Controller, FailureCategory, LLMAnalyser, parse_verdict
from sentinel_async.agents.controller.llm_analyser import FALLBACK
from sentinel_async.agents.scripted import PrematureStopExpert
from sentinel_async.events import FailureDiagnosed, FaultRecorded
from sentinel_async.store import MemoryEventStore
from sentinel_async.testing import FakeChatReply, FakeVLLM, Fault
from sentinel_async.tools.base import TaskSpec
from sentinel_async.tools.retail import RetailDomain
from tests.controller.retail_episodes import CONFIRM, YES, Played, gold_steps, play, produce

VALID = {
    "category": "policy_violation",
    "summary": "cancelled with a reason the user never gave",
    "evidence": [{"turn": 7, "expected": "no longer needed", "actual": "ordered by mistake"}],
}


@pytest.fixture
def wrong_reason(domain: RetailDomain, tasks: dict[str, TaskSpec]) -> tuple[TaskSpec, Played]:
    task = tasks["38"]
    i = next(n for n, a in enumerate(task.gold_actions) if a.name == "cancel_pending_order")
    args = {**task.gold_actions[i].arguments, "reason": "ordered by mistake"}
    steps = gold_steps(
        task, domain, replace={i: [("say", CONFIRM), ("user", YES), ("call", "cancel_pending_order", args)]}
    )
    return task, play(domain, task, steps)


def config(server: FakeVLLM) -> ClientConfig:
    return ClientConfig(base_url=server.base_url, model=server.model, max_retries=0, timeout_s=5.0)


@pytest.mark.parametrize(
    ("content", "analyser", "category"),
    [
        (json.dumps(VALID), "llm", FailureCategory.POLICY_VIOLATION),
        (f"<think>hmm</think>```json\n{json.dumps(VALID)}\n```", "llm", FailureCategory.POLICY_VIOLATION),
        ("The agent used the wrong reason.", FALLBACK, FailureCategory.WRONG_REASON),
        (json.dumps({**VALID, "category": "bad_vibes"}), FALLBACK, FailureCategory.WRONG_REASON),
        (json.dumps({"category": "wrong_item"}), FALLBACK, FailureCategory.WRONG_REASON),
    ],
)
async def test_llm_output_is_validated(
    domain: RetailDomain, wrong_reason: tuple[TaskSpec, Played], content: str, analyser: str, category: FailureCategory
) -> None:
    task, played = wrong_reason
    async with FakeVLLM(chat=[FakeChatReply(content=content)]) as server, ChatClient(config(server)) as client:
        diagnosis = await LLMAnalyser(client).diagnose(task, played.messages, played.finished, domain)
        prompt = server.bodies("/v1/chat/completions")[0]["messages"]
    assert diagnosis.analyser == analyser
    assert diagnosis.category == category
    assert diagnosis.evidence[0].episode_id == played.finished.episode_id
    assert (diagnosis.fallback_reason is None) == (analyser == "llm")
    assert "cancel_pending_order" in prompt[1]["content"]
    assert "wrong_reason" in prompt[0]["content"]


async def test_model_server_error_falls_back(domain: RetailDomain, wrong_reason: tuple[TaskSpec, Played]) -> None:
    task, played = wrong_reason
    async with FakeVLLM() as server, ChatClient(config(server)) as client:
        server.inject(Fault(kind="status", status=500))
        diagnosis = await LLMAnalyser(client).diagnose(task, played.messages, played.finished, domain)
    assert diagnosis.analyser == FALLBACK
    assert diagnosis.fallback_reason is not None
    assert "model server error" in diagnosis.fallback_reason


def test_parse_verdict_reports_the_problem() -> None:
    assert isinstance(parse_verdict(json.dumps(VALID)), object)
    problem = parse_verdict('{"category": "nope", "summary": "x"}')
    assert isinstance(problem, str)
    assert "invalid model output" in problem


async def test_controller_records_the_fallback(domain: RetailDomain, tasks: dict[str, TaskSpec]) -> None:
    store = MemoryEventStore()
    await produce(store, domain, tasks, [("5", PrematureStopExpert)])
    async with FakeVLLM(chat=[FakeChatReply(content="not json")]) as server, ChatClient(config(server)) as client:
        await Controller(domain, analyser=LLMAnalyser(client)).run(store, follow=False)
    events = [r.payload for r in store.read_stream("controller")]
    assert isinstance(events[0], FailureDiagnosed)
    assert events[0].analyser == FALLBACK
    assert events[0].category == "premature_stop"
    assert isinstance(events[1], FaultRecorded)
