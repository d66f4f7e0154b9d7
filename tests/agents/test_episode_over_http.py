"""Whole episodes driven through a fake vLLM server on loopback: chat client (agent and LLM user) and tokens."""

from __future__ import annotations

import json
import random
from typing import Any

from sentinel_async.agents.clients import ChatPolicy, ChatUser, SamplingParams, TokenPolicy, VLLMCompletionsGenerator
from sentinel_async.agents.episode import EpisodeConfig, EpisodeRunner
from sentinel_async.agents.recording import StreamRecorder, rebuild_episode
from sentinel_async.events import AssistantMessage, FaultRecorded
from sentinel_async.store import MemoryEventStore
from sentinel_async.testing.fake_vllm import FakeChatReply, FakeCompletion, FakeToolCall, FakeVLLM, Fault
from sentinel_async.tools.instructions import user_instructions
from sentinel_async.tools.retail.evaluation import Evaluator
from sentinel_async.tools.tiny import LibraryDomain

DOMAIN = LibraryDomain()
TASK = DOMAIN.task("lib_0")  # find Ada by email, then borrow b1


def scripted_server_reply(body: dict[str, Any]) -> FakeChatReply:
    """Plays both sides: the LLM user (its system prompt holds the scenario) and the agent (gold actions)."""
    messages = body["messages"]
    if "<scenario>" in messages[0]["content"]:
        last = messages[-1]["content"]
        if "borrowed" in last:
            return FakeChatReply(content="Great, thanks! ###STOP###")
        return FakeChatReply(content="Hi, I'm Ada (ada@example.com) and I'd like to borrow Dune, book b1.")
    done_calls = sum(1 for m in messages if m["role"] == "tool")
    gold = TASK.gold_actions
    if done_calls < len(gold):
        action = gold[done_calls]
        return FakeChatReply(tool_calls=(FakeToolCall(name=action.name, arguments=json.dumps(action.arguments)),))
    return FakeChatReply(content="You have borrowed Dune.")


def runner() -> EpisodeRunner:
    return EpisodeRunner(domain=DOMAIN, config=EpisodeConfig(), evaluate=Evaluator(DOMAIN).evaluate)


async def test_chat_policy_and_llm_user_play_a_whole_episode_over_http(make_config: Any) -> None:
    store = MemoryEventStore()
    async with FakeVLLM(chat=scripted_server_reply) as server:
        config = make_config(server.base_url, server.model)
        policy = ChatPolicy(config)
        user = ChatUser(config, user_instructions(TASK))
        outcome = await runner().run(
            task=TASK, policy=policy, user=user, episode_id="http", seed=0, recorder=StreamRecorder(store, "http")
        )
        await policy.transport.aclose()
        await user.transport.aclose()
        user_requests = [
            b for b in server.bodies("/v1/chat/completions") if "<scenario>" in b["messages"][0]["content"]
        ]
    assert outcome.termination == "user_stop"
    assert outcome.reward is not None
    assert outcome.reward.reward == 1.0
    # the user model saw the agent's messages as "user" turns and no tool traffic
    assert all(m["role"] != "tool" for body in user_requests for m in body["messages"])
    assert user_requests[0]["messages"][1] == {"role": "user", "content": "Hi! How can I help you today?"}
    rebuilt = rebuild_episode(store, "http", system_prompt=DOMAIN.policy())
    assert rebuilt.messages == outcome.messages


async def test_token_policy_records_prompt_ids_sampled_ids_and_logprobs(tokenizer: Any, make_config: Any) -> None:
    store = MemoryEventStore()
    gold = TASK.gold_actions
    texts = [f"<tool_call>{json.dumps({'name': a.name, 'arguments': a.arguments})}</tool_call>" for a in gold] + [
        "You have borrowed Dune."
    ]
    replies = [FakeCompletion(token_ids=tokenizer.encode(t, add_special_tokens=False), logprobs=None) for t in texts]
    seen_prompts: list[list[int]] = []

    def complete(prompt: list[int], body: dict[str, Any]) -> FakeCompletion:
        seen_prompts.append(prompt)
        return replies[len(seen_prompts) - 1]

    class User:
        async def respond(self, conversation: Any) -> Any:
            from sentinel_async.messages import ChatMessage

            done = conversation[-1].content.startswith("You have borrowed")
            return ChatMessage(role="user", content="thanks ###STOP###" if done else "borrow b1 for ada@example.com")

    async with (
        FakeVLLM(completion=complete, detokenize=tokenizer.decode) as server,
        VLLMCompletionsGenerator(make_config(server.base_url, server.model)) as generator,
    ):
        policy = TokenPolicy(tokenizer, generator, sampling=SamplingParams(max_tokens=64, seed=1), policy_version=3)
        outcome = await runner().run(
            task=TASK, policy=policy, user=User(), episode_id="tok", seed=0, policy_version=3,
            recorder=StreamRecorder(store, "tok"),
        )  # fmt: skip
    assert outcome.reward is not None
    assert outcome.reward.reward == 1.0
    turns = [e.payload for e in store.read() if isinstance(e.payload, AssistantMessage) and e.payload.tokens]
    assert len(turns) == 3
    for turn, prompt, reply in zip(turns, seen_prompts, replies, strict=True):
        assert turn.tokens is not None
        assert turn.tokens.prompt_ids == prompt
        assert turn.tokens.sampled_ids[: len(reply.token_ids)] == reply.token_ids
        assert len(turn.tokens.logprobs) == len(turn.tokens.sampled_ids)
        assert turn.policy_version == 3
    assert turns[0].tool_calls[0].name == "find_member_by_email"


async def test_a_server_that_stays_down_ends_the_episode_with_a_recorded_fault(make_config: Any, sleeper: Any) -> None:
    store = MemoryEventStore()
    async with FakeVLLM(chat=scripted_server_reply) as server:
        server.inject(Fault(kind="status", status=503, times=100))
        config = make_config(server.base_url, server.model, max_retries=2)
        policy = ChatPolicy(config, sleep=sleeper, rng=random.Random(0))

        class User:
            async def respond(self, conversation: Any) -> Any:
                from sentinel_async.messages import ChatMessage

                return ChatMessage(role="user", content="hello")

        outcome = await runner().run(
            task=TASK, policy=policy, user=User(), episode_id="down", seed=0, recorder=StreamRecorder(store, "down")
        )
        await policy.transport.aclose()
    assert outcome.termination == "agent_error"
    assert len(sleeper.delays) == 2, "retried twice with backoff before giving up"
    faults = [e.payload for e in store.read() if isinstance(e.payload, FaultRecorded)]
    assert len(faults) == 1
    assert "503" in faults[0].message
