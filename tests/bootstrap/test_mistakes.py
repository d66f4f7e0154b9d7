"""Injected mistakes: demonstrations of a mistyped id, the tool's error and the correct call, trained on the
recovery only."""

from __future__ import annotations

import asyncio
import importlib.util
import random

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("tau2") is None or importlib.util.find_spec("transformers") is None,
    reason="needs the tau2 and train extras",
)

from sentinel_async.agents.clients.token_client import to_template_messages  # noqa: E402
from sentinel_async.bootstrap.demos import DemoConfig, generate_demos, tokenize_demos, turn_window_samples  # noqa: E402
from sentinel_async.bootstrap.mistakes import (  # noqa: E402
    MISTAKE_PREFIX,
    database_ids,
    is_mistake,
    mistaken_call,
    mistype,
)
from sentinel_async.bootstrap.tokenizer import render_ids, train_tokenizer  # noqa: E402
from sentinel_async.messages import ChatMessage, ToolCall  # noqa: E402
from sentinel_async.tools.retail import RetailDomain  # noqa: E402


@pytest.fixture(scope="module")
def domain() -> RetailDomain:
    return RetailDomain()


def test_a_mistyped_id_keeps_a_prefix_changes_a_digit_and_never_names_a_real_id() -> None:
    known = {"#W2378157", "#W2378150"}
    rng = random.Random(0)
    for _ in range(200):
        wrong = mistype("#W2378156", rng, known)
        assert wrong is not None
        assert wrong != "#W2378156"
        assert wrong not in known
        assert wrong.startswith("#W")
        assert len(wrong) == len("#W2378156")
        assert wrong[2:].isdigit()
    assert mistype("#W2378156", random.Random(3), set()) == mistype("#W2378156", random.Random(3), set())
    assert mistype("no digits", rng, set()) is None


def test_a_mistaken_call_changes_one_id_and_is_marked() -> None:
    call = ToolCall(
        id="write_0",
        name="exchange_delivered_order_items",
        arguments={"order_id": "#W1", "item_ids": ["111", "222"], "new_item_ids": ["333"], "payment_method_id": "p"},
    )
    wrong = mistaken_call(call, random.Random(1), set())
    assert wrong is not None
    assert wrong.id == f"{MISTAKE_PREFIX}write_0"
    changed = [k for k in call.arguments if call.arguments[k] != wrong.arguments[k]]
    assert len(changed) == 1
    assert changed[0] != "payment_method_id"
    assert is_mistake(ChatMessage(role="assistant", tool_calls=(wrong,)))
    lookup = ToolCall(id="a", name="find_user_id_by_email", arguments={"email": "x@y"})
    assert mistaken_call(lookup, random.Random(), set()) is None


def demos_with_mistakes(domain: RetailDomain) -> list[list[ChatMessage]]:
    config = DemoConfig(episodes_per_task=1, max_tasks=8, mistake_rate=0.5, intent_weights={})
    demos = asyncio.run(generate_demos(domain, config))
    assert demos.failed == 0  # a mistaken call fails without touching the database: the task is still solved
    assert demos.recoveries > 0
    return demos.conversations


def test_every_mistake_gets_an_error_and_is_followed_by_the_correct_call(domain: RetailDomain) -> None:
    known = database_ids(domain.new_environment().db)
    seen = 0
    for conversation in demos_with_mistakes(domain):
        for i, message in enumerate(conversation):
            if message.role != "assistant" or not is_mistake(message):
                continue
            seen += 1
            wrong = message.tool_calls[0]
            result, retry = conversation[i + 1], conversation[i + 2]
            assert result.role == "tool"
            assert result.content.startswith("Error:")
            assert retry.role == "assistant"
            assert not is_mistake(retry)
            right = retry.tool_calls[0]
            assert right.name == wrong.name
            assert wrong.id == MISTAKE_PREFIX + right.id
            assert right.arguments != wrong.arguments
            assert all(v in known for v in _ids(right.arguments))
    assert seen > 0


def test_mistaken_turns_are_left_out_of_the_loss(domain: RetailDomain) -> None:
    conversations = [c for c in demos_with_mistakes(domain) if any(is_mistake(m) for m in c)]
    tokenizer = train_tokenizer(
        [c[-2].content for c in conversations] + [str(m.tool_calls) for c in conversations for m in c],
        vocab_size=400,
        isolate_spaces=True,
    )
    tools = domain.tool_schemas()
    samples, _ = tokenize_demos(tokenizer, conversations, tools, max_len=100_000)
    for conversation, sample in zip(conversations, samples, strict=True):
        _, full = render_ids(tokenizer, to_template_messages(conversation), tools)
        trained = tokenizer.decode([t for t, m in zip(sample.ids, sample.mask, strict=True) if m])
        for message in conversation:
            for call in message.tool_calls:
                text = '"arguments": ' + _json(call.arguments)
                assert (text in trained) == (not call.id.startswith(MISTAKE_PREFIX)), text
        assert sum(sample.mask) < sum(full)
        for window in turn_window_samples(tokenizer, conversation):
            target = tokenizer.decode([t for t, m in zip(window.ids, window.mask, strict=True) if m])
            assert not any(
                '"arguments": ' + _json(c.arguments) in target
                for m in conversation
                if is_mistake(m)
                for c in m.tool_calls
            )


def _json(arguments: object) -> str:
    import json

    return json.dumps(arguments)


def _ids(arguments: dict[str, object]) -> list[str]:
    out: list[str] = []
    for name in ("order_id", "product_id", "item_ids", "new_item_ids"):
        value = arguments.get(name)
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, list):
            out += [v for v in value if isinstance(v, str)]
    return out
