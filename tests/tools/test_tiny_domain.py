"""The tiny library domain: tools, errors, forks, hashes, tasks, and scoring with the shared Evaluator."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sentinel_async.messages import ChatMessage, ToolCall
from sentinel_async.tools.base import Domain, TaskSpec
from sentinel_async.tools.retail.evaluation import Evaluator
from sentinel_async.tools.tiny import LibraryDomain


@pytest.fixture
def domain() -> LibraryDomain:
    return LibraryDomain()


def call(name: str, **arguments: Any) -> ToolCall:
    return ToolCall(id=f"c_{name}", name=name, arguments=arguments)


def test_domain_protocol_and_tasks(domain: LibraryDomain) -> None:
    typed: Domain = domain
    assert typed.tool_names() == ("find_member_by_email", "get_member", "get_book", "borrow_book", "return_book")
    assert [s["function"]["name"] for s in domain.tool_schemas()] == list(domain.tool_names())
    assert domain.write_tools() == {"borrow_book", "return_book"}
    assert "email" in domain.policy()
    assert len(domain.tasks()) == 4
    assert {t.id for t in domain.tasks("train")} | {t.id for t in domain.tasks("test")} == {
        t.id for t in domain.tasks()
    }
    assert domain.task("lib_2").communicate_info == ["Jane Austen"]
    with pytest.raises(KeyError):
        domain.task("nope")


def test_reads_and_writes(domain: LibraryDomain) -> None:
    env = domain.new_environment()
    assert env.call(call("find_member_by_email", email="ADA@example.com")).content == "ada"
    book = json.loads(env.call(call("get_book", book_id="b2")).content)
    assert book["author"] == "Jane Austen"
    assert env.state_hash() == domain.base_hash()
    outcome = env.call(call("borrow_book", member_id="ada", book_id="b1"))
    assert not outcome.error
    assert json.loads(outcome.content)["borrowed"] == ["b1"]
    assert env.state_hash() != domain.base_hash()
    assert env.is_write_tool("borrow_book")
    assert not env.is_write_tool("get_book")


@pytest.mark.parametrize(
    ("tool_call", "fragment"),
    [
        (call("burn_book", book_id="b1"), "Tool 'burn_book' not found"),
        (call("get_book"), "missing a required argument: 'book_id'"),
        (call("get_book", book_id="b1", colour="red"), "unexpected keyword argument 'colour'"),
        (call("get_book", book_id=["b1"]), "Error:"),
        (call("get_book", book_id="b9"), "Book not found"),
        (call("borrow_book", member_id="ada", book_id="b3"), "Book is not available"),
        (call("return_book", member_id="ada", book_id="b1"), "has not borrowed"),
    ],
)
def test_errors_are_outcomes(domain: LibraryDomain, tool_call: ToolCall, fragment: str) -> None:
    outcome = domain.new_environment().call(tool_call)
    assert outcome.error
    assert outcome.content.startswith("Error: ")
    assert fragment in outcome.content


def test_borrow_limit_and_fork_independence(domain: LibraryDomain) -> None:
    first, second = domain.new_environment(), domain.new_environment()
    assert not first.call(call("borrow_book", member_id="alan", book_id="b1")).error
    assert "at most 2" in first.call(call("borrow_book", member_id="alan", book_id="b2")).content
    assert second.state_hash() == domain.base_hash()
    assert domain.new_environment().state_hash() == domain.base_hash()
    assert not first.call(call("return_book", member_id="alan", book_id="b1")).error
    assert first.state_hash() == domain.base_hash()  # equal states, equal hashes


def episode(domain: LibraryDomain, task: TaskSpec, skip_last: bool = False) -> list[ChatMessage]:
    env = domain.new_environment()
    messages = [ChatMessage(role="user", content="hello")]
    actions = task.gold_actions[:-1] if skip_last else task.gold_actions
    for index, action in enumerate(actions):
        tool_call = ToolCall(id=str(index), name=action.name, arguments=action.arguments)
        outcome = env.call(tool_call)
        messages.append(ChatMessage(role="assistant", tool_calls=(tool_call,)))
        messages.append(ChatMessage(role="tool", content=outcome.content, tool_call_id=str(index), error=outcome.error))
    messages.append(ChatMessage(role="assistant", content="Done. " + " ".join(task.communicate_info)))
    return messages


def test_gold_actions_all_succeed_and_score_one(domain: LibraryDomain) -> None:
    evaluator = Evaluator(domain)
    for task in domain.tasks():
        env = domain.new_environment()
        for action in task.gold_actions:
            assert not env.call(ToolCall(id="g", name=action.name, arguments=action.arguments)).error, task.id
        assert evaluator.evaluate(task, episode(domain, task), "agent_stop").reward == 1.0
        assert evaluator.evaluate(task, episode(domain, task), "max_steps").reward == 0.0


def test_missing_write_scores_zero(domain: LibraryDomain) -> None:
    result = Evaluator(domain).evaluate(domain.task("lib_0"), episode(domain, domain.task("lib_0"), True), "user_stop")
    assert (result.reward, result.db) == (0.0, 0.0)
