"""Guide episodes: an expert's turns recorded as the ids the policy would sample, with the policy's log-probs."""

from __future__ import annotations

from typing import Any

import pytest

from sentinel_async.agents.clients import (
    MalformedResponseError,
    SamplingParams,
    TokenPolicy,
    TransformersGenerator,
    VLLMCompletionsGenerator,
    parse_qwen_output,
)
from sentinel_async.agents.clients.token_client import to_template_messages
from sentinel_async.agents.episode import EpisodeConfig, EpisodeRunner
from sentinel_async.agents.guidance import GuidedPolicy
from sentinel_async.agents.scripted import ScriptedUser, derive_user_script
from sentinel_async.agents.scripted.dialogue_expert import DialogueExpert
from sentinel_async.agents.solver.samples import build_samples
from sentinel_async.events import AssistantMessage, Event
from sentinel_async.messages import ChatMessage, ToolCall
from sentinel_async.testing import FakeCompletion, FakeVLLM, Fault

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")

CONVERSATION = [
    ChatMessage(role="system", content="You are a retail agent."),
    ChatMessage(role="user", content="Cancel order #W2378156, please."),
]
CALL = ChatMessage(
    role="assistant",
    content="",
    tool_calls=(ToolCall(id="c1", name="get_order_details", arguments={"order_id": "#W2378156"}),),
)


def forward_logprobs(model: Any, prompt: list[int], ids: list[int], temperature: float) -> list[float]:
    import torch

    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt + ids])).logits[0].float()
    steps = logits[len(prompt) - 1 : len(prompt) + len(ids) - 1] / temperature
    return [float(x) for x in torch.log_softmax(steps, dim=-1).gather(1, torch.tensor(ids)[:, None])[:, 0]]


@pytest.mark.parametrize("message", [CALL, ChatMessage(role="assistant", content="Which order is it about?")])
async def test_a_forced_turn_is_what_the_policy_would_sample_with_its_own_logprobs(
    tokenizer: Any, tiny_model: Any, order_tools: list[dict[str, Any]], message: ChatMessage
) -> None:
    generator = TransformersGenerator(tiny_model, num_threads=1)
    policy = TokenPolicy(tokenizer, generator, sampling=SamplingParams(temperature=0.7))
    turn = await policy.forced_turn(CONVERSATION, order_tools, message)
    assert turn.tokens is not None
    trace = turn.tokens
    assert trace.prompt_ids == policy.render_prompt(CONVERSATION, order_tools)
    assert trace.sampled_ids[-1] in policy.sampling.stop_token_ids, "a turn ends on a stop id, as a sampled one does"
    whole = tokenizer.apply_chat_template(
        to_template_messages([*CONVERSATION, message]), tools=order_tools, tokenize=True, return_dict=False
    )
    assert whole[: len(trace.prompt_ids) + len(trace.sampled_ids)] == trace.prompt_ids + trace.sampled_ids
    parsed = parse_qwen_output(tokenizer.decode(trace.sampled_ids[:-1]), tools=order_tools)
    assert parsed.content == message.content
    assert [(c.name, c.arguments) for c in parsed.tool_calls] == [(c.name, c.arguments) for c in message.tool_calls]
    expected = forward_logprobs(tiny_model, trace.prompt_ids, trace.sampled_ids, 0.7)
    assert trace.logprobs == pytest.approx(expected, abs=1e-4)
    assert turn.message == message


class SamplesOnly:
    """A generator that samples and cannot score given ids (as a remote completions server here)."""

    async def generate(self, prompt_ids: Any, params: SamplingParams) -> Any:
        raise AssertionError("a forced turn samples nothing")


async def test_a_generator_that_cannot_score_is_refused(tokenizer: Any, order_tools: list[dict[str, Any]]) -> None:
    policy = TokenPolicy(tokenizer, SamplesOnly())
    with pytest.raises(TypeError, match="SamplesOnly cannot score"):
        await policy.forced_turn(CONVERSATION, order_tools, CALL)


async def test_a_forced_turn_over_vllm_takes_the_prompt_logprobs_of_the_turns_ids(
    tokenizer: Any, make_config: Any, order_tools: list[dict[str, Any]]
) -> None:
    def reply(prompt: list[int], body: dict[str, Any]) -> FakeCompletion:
        return FakeCompletion(token_ids=[7], prompt_logprobs=[-0.001 * i for i in range(1, len(prompt))])

    async with (
        FakeVLLM(completion=reply, detokenize=tokenizer.decode) as server,
        VLLMCompletionsGenerator(make_config(server.base_url, server.model)) as generator,
    ):
        turn = await TokenPolicy(tokenizer, generator).forced_turn(CONVERSATION, order_tools, CALL)
    (body,) = server.bodies("/v1/completions")
    assert turn.tokens is not None
    prompt, ids = turn.tokens.prompt_ids, turn.tokens.sampled_ids
    assert body["prompt"] == prompt + ids
    assert body["prompt_logprobs"] == 0
    assert body["max_tokens"] == 1
    assert turn.tokens.logprobs == [-0.001 * i for i in range(len(prompt), len(prompt) + len(ids))]


async def test_a_server_without_prompt_logprobs_is_a_clear_error(
    tokenizer: Any, make_config: Any, order_tools: list[dict[str, Any]]
) -> None:
    async with FakeVLLM(completion=[FakeCompletion(token_ids=[7])]) as server:
        server.inject(Fault(kind="drop_field", field="choices.0.prompt_logprobs", path="/v1/completions"))
        async with VLLMCompletionsGenerator(make_config(server.base_url, server.model)) as generator:
            policy = TokenPolicy(tokenizer, generator)
            with pytest.raises(MalformedResponseError, match="no `prompt_logprobs`"):
                await policy.forced_turn(CONVERSATION, order_tools, CALL)


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def record(self, event: Event) -> None:
        self.events.append(event)


async def test_a_guided_episode_solves_the_task_and_trains_only_on_the_experts_turns(
    tokenizer: Any, tiny_model: Any
) -> None:
    from sentinel_async.tools.retail import RetailDomain
    from sentinel_async.tools.retail.evaluation import Evaluator

    domain = RetailDomain()
    task = domain.tasks("train")[0]
    script = derive_user_script(task, domain)
    policy = TokenPolicy(tokenizer, TransformersGenerator(tiny_model, num_threads=1))
    guided = GuidedPolicy(DialogueExpert(task, domain, script=script), policy)
    runner = EpisodeRunner(domain=domain, config=EpisodeConfig(max_steps=60), evaluate=Evaluator(domain).evaluate)
    recorder = Recorder()
    outcome = await runner.run(
        task=task, policy=guided, user=ScriptedUser(script, seed=0), episode_id="g", seed=0, recorder=recorder
    )
    assert outcome.reward is not None
    assert outcome.reward.reward == 1.0, "the tiny random model did not choose a word: the expert solved the task"
    turns = [e for e in recorder.events if isinstance(e, AssistantMessage) and e.tokens is not None]
    assert turns
    samples, _ = build_samples("g", turns)
    trained = tokenizer.decode([i for s in samples for i, m in zip(s.input_ids, s.loss_mask, strict=True) if m])
    said = [t.content for t in turns if t.content] + [c.name for t in turns for c in t.tool_calls]
    assert all(text.split()[0] in trained for text in said)
    assert sum(s.num_sampled for s in samples) == sum(len(t.tokens.sampled_ids) for t in turns if t.tokens)
    assert "<tool_response>" not in trained, "tool results are never in the loss"


async def test_a_rewrite_changes_the_recorded_ids_and_their_logprobs_but_not_the_message(
    tokenizer: Any, tiny_model: Any, order_tools: list[dict[str, Any]]
) -> None:
    generator = TransformersGenerator(tiny_model, num_threads=1)
    policy = TokenPolicy(tokenizer, generator)
    plain = await policy.forced_turn(CONVERSATION, order_tools, CALL)
    assert plain.tokens is not None
    a, b = sorted(set(plain.tokens.sampled_ids[:-1]))[:2]  # two tokens of the call, swapped everywhere

    def swap(ids: list[int]) -> list[int]:
        return [b if i == a else a if i == b else i for i in ids]

    turn = await policy.forced_turn(CONVERSATION, order_tools, CALL, rewrite=swap)
    assert turn.tokens is not None
    assert turn.tokens.prompt_ids == swap(plain.tokens.prompt_ids)
    assert turn.tokens.sampled_ids == swap(plain.tokens.sampled_ids) != plain.tokens.sampled_ids
    expected = forward_logprobs(tiny_model, turn.tokens.prompt_ids, turn.tokens.sampled_ids, 1.0)
    assert turn.tokens.logprobs == pytest.approx(expected, abs=1e-4)
    assert turn.message == CALL
    with pytest.raises(ValueError, match="keep its length"):
        await policy.forced_turn(CONVERSATION, order_tools, CALL, rewrite=lambda ids: ids[1:])


async def test_a_renamed_guide_records_another_customers_tokens_but_plays_the_experts_message(
    tokenizer: Any, tiny_model: Any, order_tools: list[dict[str, Any]]
) -> None:
    from sentinel_async.agents.protocols import PolicyTurn
    from sentinel_async.bootstrap.names import Renaming

    said = ChatMessage(role="assistant", content="Thank you, Mei Kovacs.")

    class Expert:
        async def act(self, conversation: Any, tools: Any) -> PolicyTurn:
            return PolicyTurn(message=said)

    renaming = Renaming({"Mei": "Noah", "Kovacs": "Brown"})
    conversation = [*CONVERSATION, ChatMessage(role="user", content="I am Mei Kovacs.")]
    policy = TokenPolicy(tokenizer, TransformersGenerator(tiny_model, num_threads=1))
    turn = await GuidedPolicy(Expert(), policy, rename=renaming.message).act(conversation, order_tools)
    expected = await policy.forced_turn(renaming.conversation(conversation), order_tools, renaming.message(said))
    assert turn.message == said, "the episode goes on with what the expert said"
    assert turn.tokens is not None
    assert expected.tokens is not None
    assert turn.tokens.prompt_ids == expected.tokens.prompt_ids
    assert turn.tokens.sampled_ids == expected.tokens.sampled_ids
    assert turn.tokens.logprobs == pytest.approx(expected.tokens.logprobs, abs=1e-5)
    recorded = tokenizer.decode(turn.tokens.prompt_ids + turn.tokens.sampled_ids)
    assert "Noah Brown" in recorded
    assert "Mei" not in recorded
