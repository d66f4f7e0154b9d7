"""The dialogue expert solves retail tasks with the scripted user, and every value it writes was said before."""

from __future__ import annotations

import importlib.util

import pytest

from sentinel_async.agents.episode import EpisodeOutcome
from sentinel_async.agents.scripted import derive_user_script
from sentinel_async.agents.scripted.dialogue_expert import confirmation, write_call
from sentinel_async.agents.scripted.user import proposal_matches
from sentinel_async.tools.base import TaskSpec
from sentinel_async.tools.retail import RetailDomain
from tests.agents.expert_episodes import play_all, strings, visible

pytestmark = pytest.mark.skipif(importlib.util.find_spec("tau2") is None, reason="needs the tau2 extra")


@pytest.fixture(scope="module")
def domain() -> RetailDomain:
    return RetailDomain()


@pytest.fixture(scope="module")
def general(domain: RetailDomain) -> list[TaskSpec]:
    from sentinel_async.agents.proposer import general_tasks

    return general_tasks(domain, 60, seed=3)


@pytest.fixture(scope="module")
def outcomes(domain: RetailDomain, general: list[TaskSpec]) -> list[EpisodeOutcome]:
    return play_all(domain, [*domain.tasks("base"), *general])


def test_it_solves_every_benchmark_and_general_task(outcomes: list[EpisodeOutcome]) -> None:
    assert len(outcomes) == 114 + 60
    failed = [(o.task_id, o.termination) for o in outcomes if o.reward is None or o.reward.reward != 1.0]
    assert failed == []
    assert all(o.tool_errors == 0 for o in outcomes)


def test_every_value_it_writes_was_in_the_conversation_before(outcomes: list[EpisodeOutcome]) -> None:
    unseen = []
    for outcome in outcomes:
        messages = outcome.messages
        for index, message in enumerate(messages):
            for call in message.tool_calls:
                if call.name == "transfer_to_human_agents":  # a free-text summary
                    continue
                before = visible(messages[1:index])  # not the system prompt
                unseen += [(outcome.task_id, call.name, v) for v in strings(call.arguments) if v not in before]
    assert unseen == []


def test_a_write_copies_the_confirmation_just_before_it(outcomes: list[EpisodeOutcome], domain: RetailDomain) -> None:
    writes = 0
    for outcome in outcomes:
        messages = outcome.messages
        for index, message in enumerate(messages):
            for call in message.tool_calls:
                if not domain.is_write_tool(call.name):
                    continue
                writes += 1
                confirm = messages[index - 2]
                assert confirm.role == "assistant"
                assert confirm.content.endswith("Do you confirm (yes/no)?")
                assert all(v in confirm.content for v in strings(call.arguments)), (outcome.task_id, call)
    assert writes > 100


def test_one_call_or_one_message_per_turn(outcomes: list[EpisodeOutcome]) -> None:
    for outcome in outcomes:
        for message in outcome.messages:
            if message.role == "assistant":
                assert len(message.tool_calls) <= 1
                if message.tool_calls and message.tool_calls[0].name != "get_product_details":
                    assert not message.content


def test_a_product_lookup_first_copies_the_items_line_from_the_id_the_customer_gave_to_its_product_id(
    outcomes: list[EpisodeOutcome],
) -> None:
    from sentinel_async.tools.retail.views import retail_lines

    lookups = 0
    for outcome in outcomes:
        messages = outcome.messages
        for index, message in enumerate(messages):
            if not message.tool_calls or message.tool_calls[0].name != "get_product_details":
                continue
            lookups += 1
            listings = "\n".join(retail_lines(m.name or "", m.content) for m in messages[:index] if m.role == "tool")
            product_id = message.tool_calls[0].arguments["product_id"]
            assert message.content.endswith(f"product_id {product_id}")
            assert message.content in listings, "the cue is the order listing's line, word for word"
            said = next(m.content for m in reversed(messages[:index]) if m.role == "user")
            item_id = message.content.removeprefix("item_id ").split(",")[0]
            assert f"item id {item_id}" in said, "the cue starts from the item id the customer just gave"
    assert lookups > 30


def test_its_confirmation_is_what_the_customer_agrees_to(domain: RetailDomain) -> None:
    for task in domain.tasks("base"):
        script = derive_user_script(task, domain)
        for intent in script.intents:
            if intent.tool is None or intent.kind == "transfer":
                continue
            call = write_call(intent, script.identity.user_id, "c")
            assert call.name == intent.tool
            assert proposal_matches(confirmation(intent, call), intent), (task.id, intent.kind)
