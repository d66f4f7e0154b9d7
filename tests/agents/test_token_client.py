"""TokenPolicy: exact prompt ids, ids and log-probs from vLLM's /v1/completions and from an in-process model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sentinel_async.agents.clients import (
    ClientConfig,
    MalformedResponseError,
    ModelServerRequestError,
    SamplingParams,
    TokenPolicy,
    TransformersGenerator,
    VLLMCompletionsGenerator,
)
from sentinel_async.agents.clients.qwen_format import format_tool_call
from sentinel_async.agents.clients.token_client import to_template_messages
from sentinel_async.messages import ChatMessage, ToolCall
from sentinel_async.prompt_view import PromptView
from sentinel_async.testing import FakeCompletion, FakeVLLM, Fault

MakeConfig = Callable[..., ClientConfig]
COMPLETIONS = "/v1/completions"

CONVERSATION = [
    ChatMessage(role="system", content="You are a retail agent."),
    ChatMessage(role="user", content="Cancel order #W2378156, please."),
    ChatMessage(
        role="assistant",
        tool_calls=(ToolCall(id="c1", name="get_order_details", arguments={"order_id": "#W2378156"}),),
    ),
    ChatMessage(role="tool", content='{"status": "pending"}', tool_call_id="c1"),
]


def test_prompt_ids_equal_the_tokenizer_rendering(tokenizer: Any, order_tools: list[dict[str, Any]]) -> None:
    policy = TokenPolicy(tokenizer, generator=None)  # type: ignore[arg-type]
    prompt = policy.render_prompt(CONVERSATION, order_tools)
    text = tokenizer.apply_chat_template(
        to_template_messages(CONVERSATION), tools=order_tools, add_generation_prompt=True, tokenize=False
    )
    assert text.endswith('<tool_response>\n{"status": "pending"}\n</tool_response><|im_end|>\n<|im_start|>assistant\n')
    assert '{"name": "get_order_details", "arguments": {"order_id": "#W2378156"}}' in text
    assert prompt == tokenizer.encode(text, add_special_tokens=False)
    assert policy.sampling.stop_token_ids == (tokenizer.convert_tokens_to_ids("<|im_end|>"), 0)


def test_a_tool_view_changes_the_prompt_and_not_the_conversation(
    tokenizer: Any, order_tools: list[dict[str, Any]]
) -> None:
    def shout(name: str, content: str) -> str:
        return content.upper()

    policy = TokenPolicy(tokenizer, generator=None, view=PromptView(tool_view=shout))  # type: ignore[arg-type]
    text = tokenizer.decode(policy.render_prompt(CONVERSATION, order_tools))
    assert '<tool_response>\n{"STATUS": "PENDING"}\n</tool_response>' in text
    assert CONVERSATION[-1].content == '{"status": "pending"}'


async def test_token_policy_over_fake_vllm(
    tokenizer: Any, make_config: MakeConfig, order_tools: list[dict[str, Any]]
) -> None:
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    call_text = format_tool_call("cancel_pending_order", {"order_id": "#W2378156", "reason": "ordered by mistake"})
    sampled = [*tokenizer.encode(call_text, add_special_tokens=False), im_end]
    logprobs = [-0.01 * (i + 1) for i in range(len(sampled))]
    reply = FakeCompletion(token_ids=sampled, logprobs=logprobs, finish_reason="stop")
    async with FakeVLLM(completion=[reply], detokenize=tokenizer.decode) as server:
        cfg = make_config(server.base_url, server.model)
        async with VLLMCompletionsGenerator(cfg) as generator:
            policy = TokenPolicy(tokenizer, generator, sampling=SamplingParams(max_tokens=64, seed=5), policy_version=4)
            turn = await policy.act(CONVERSATION, order_tools)

    (body,) = server.bodies(COMPLETIONS)
    assert turn.tokens is not None
    assert body["prompt"] == turn.tokens.prompt_ids == policy.render_prompt(CONVERSATION, order_tools)
    assert body["logprobs"] == 1
    assert body["return_tokens_as_token_ids"] is True
    assert body["seed"] == 5
    assert body["stop_token_ids"] == [im_end, 0]
    assert body["max_tokens"] == 64
    assert turn.tokens.sampled_ids == sampled
    assert turn.tokens.logprobs == logprobs
    assert turn.finish_reason == "stop"
    assert turn.policy_version == 4
    assert turn.parse_error is None
    assert turn.raw_text == call_text
    (call,) = turn.message.tool_calls
    assert (call.name, call.arguments) == (
        "cancel_pending_order",
        {"order_id": "#W2378156", "reason": "ordered by mistake"},
    )


async def test_ids_recovered_from_token_id_strings_alone(tokenizer: Any, make_config: MakeConfig) -> None:
    """Older vLLM (no `return_token_ids`): ids come from `token_id:<id>` strings in `logprobs.tokens`."""
    reply = FakeCompletion(token_ids=[5, 6, 7], logprobs=[-1.0, -2.0, -3.0], finish_reason="length")
    async with FakeVLLM(completion=[reply]) as server:
        server.inject(Fault(kind="drop_field", field="choices.0.token_ids"))
        async with VLLMCompletionsGenerator(make_config(server.base_url, server.model)) as generator:
            result = await generator.generate([1, 2, 3], SamplingParams(max_tokens=3))
    assert (result.token_ids, result.logprobs, result.finish_reason) == ([5, 6, 7], [-1.0, -2.0, -3.0], "length")


@pytest.mark.parametrize(
    ("field", "expected"),
    [("choices.0.logprobs", "no `logprobs`"), ("choices.0.text", "missing required field `text`")],
)
async def test_incomplete_completion_is_malformed(make_config: MakeConfig, field: str, expected: str) -> None:
    async with FakeVLLM(completion=[FakeCompletion(token_ids=[5])]) as server:
        server.inject(Fault(kind="drop_field", field=field))
        async with VLLMCompletionsGenerator(make_config(server.base_url, server.model)) as generator:
            with pytest.raises(MalformedResponseError, match=expected):
                await generator.generate([1, 2], SamplingParams())


async def test_lora_adapter_flow(make_config: MakeConfig) -> None:
    async with (
        FakeVLLM(completion=lambda prompt, body: FakeCompletion(token_ids=[9])) as server,
        VLLMCompletionsGenerator(make_config(server.base_url, server.model)) as generator,
    ):
        generator.use_model("policy-v1", version=1)
        with pytest.raises(ModelServerRequestError, match="`policy-v1` does not exist") as info:
            await generator.generate([1], SamplingParams())
        assert info.value.status == 404
        message = await generator.load_lora_adapter("policy-v1", "/ckpt/v1")
        assert message == "Success: LoRA adapter 'policy-v1' added successfully."
        result = await generator.generate([1], SamplingParams())
        assert result.weights_version == 1
        models = await generator.list_models()
        assert [(m.id, m.parent) for m in models.data] == [(server.model, None), ("policy-v1", server.model)]
        with pytest.raises(ModelServerRequestError, match="already been loaded"):
            await generator.load_lora_adapter("policy-v1", "/ckpt/v1")
        await generator.unload_lora_adapter("policy-v1")
        with pytest.raises(ModelServerRequestError, match="cannot be found"):
            await generator.unload_lora_adapter("policy-v1")
    assert server.bodies(COMPLETIONS)[-1]["model"] == "policy-v1"


def forward_logprobs(model: Any, prompt: list[int], sampled: list[int], temperature: float) -> list[float]:
    """Recompute each sampled token's log-prob with one full forward pass (what the trainer does)."""
    import torch

    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt + sampled])).logits[0].float()
    steps = logits[len(prompt) - 1 : len(prompt) + len(sampled) - 1] / temperature
    picked = torch.log_softmax(steps, dim=-1).gather(1, torch.tensor(sampled)[:, None])
    return [float(x) for x in picked[:, 0]]


@pytest.mark.parametrize(("mode", "temperature"), [("processed", 0.7), ("raw", 0.7), ("processed", 1.0)])
async def test_transformers_logprobs_match_forward_pass(
    tokenizer: Any, tiny_model: Any, order_tools: list[dict[str, Any]], mode: Any, temperature: float
) -> None:
    generator = TransformersGenerator(tiny_model, logprobs_mode=mode, num_threads=1)
    sampling = SamplingParams(max_tokens=12, temperature=temperature, seed=11)
    policy = TokenPolicy(tokenizer, generator, sampling=sampling, validate_tools=False)
    turn = await policy.act(CONVERSATION, order_tools)
    assert turn.tokens is not None
    assert turn.raw_text is not None
    trace = turn.tokens
    assert trace.prompt_ids == policy.render_prompt(CONVERSATION, order_tools)
    assert 1 <= len(trace.sampled_ids) <= 12
    assert len(trace.logprobs) == len(trace.sampled_ids)
    reference_t = temperature if mode == "processed" else 1.0
    expected = forward_logprobs(tiny_model, trace.prompt_ids, trace.sampled_ids, reference_t)
    assert trace.logprobs == pytest.approx(expected, abs=1e-4)
    assert turn.finish_reason in ("stop", "length")


async def test_top_p_logprobs_are_renormalised_over_the_nucleus(tokenizer: Any, tiny_model: Any) -> None:
    import torch

    generator = TransformersGenerator(tiny_model)
    prompt = tokenizer.encode("Hi! How can I help you today?", add_special_tokens=False)
    result = await generator.generate(prompt, SamplingParams(max_tokens=6, temperature=1.0, top_p=0.5, seed=3))
    with torch.no_grad():
        logits = tiny_model(input_ids=torch.tensor([prompt + result.token_ids])).logits[0].float()
    for step, (token, logprob) in enumerate(zip(result.token_ids, result.logprobs, strict=True)):
        probs = torch.softmax(logits[len(prompt) - 1 + step], dim=-1)
        sorted_probs, order = torch.sort(probs, descending=True)
        keep = int(((sorted_probs.cumsum(0) - sorted_probs) < 0.5).sum())
        nucleus = order[:keep].tolist()
        assert token in nucleus
        expected = float(torch.log(probs[token] / sorted_probs[:keep].sum()))
        assert logprob == pytest.approx(expected, abs=1e-4)


async def test_seeded_generation_is_reproducible_and_weights_swap(tokenizer: Any, tiny_model: Any) -> None:
    import copy

    import torch

    model = copy.deepcopy(tiny_model)
    policy = TokenPolicy(tokenizer, TransformersGenerator(model), sampling=SamplingParams(max_tokens=8, seed=1))
    first = await policy.act(CONVERSATION[:2], [])
    again = await policy.act(CONVERSATION[:2], [])
    assert first.tokens == again.tokens
    assert first.policy_version == 0

    new_state = {k: v + 0.05 * torch.randn_like(v) for k, v in model.state_dict().items()}
    assert await policy.update_weights(new_state) == 1
    assert policy.policy_version == 1
    assert torch.equal(model.state_dict()["lm_head.weight"], new_state["lm_head.weight"])
    swapped = await policy.act(CONVERSATION[:2], [])
    assert swapped.policy_version == 1
    assert swapped.tokens is not None
    assert first.tokens is not None
    assert swapped.tokens.prompt_ids == first.tokens.prompt_ids
    assert swapped.tokens.logprobs != first.tokens.logprobs
    assert await policy.update_weights(new_state, version=7) == 7


async def test_vllm_generator_cannot_swap_weights(tokenizer: Any, make_config: MakeConfig) -> None:
    generator = VLLMCompletionsGenerator(make_config("http://127.0.0.1:9/v1", "m"))
    policy = TokenPolicy(tokenizer, generator)
    with pytest.raises(TypeError, match="cannot take weights in place"):
        await policy.update_weights({})
    await generator.aclose()


async def _concurrently(
    generator: TransformersGenerator, requests: list[tuple[list[int], SamplingParams]]
) -> list[Any]:
    import anyio

    results: list[Any] = [None] * len(requests)

    async def one(index: int) -> None:
        results[index] = await generator.generate(*requests[index])

    async with anyio.create_task_group() as group:
        for index in range(len(requests)):
            group.start_soon(one, index)
    return results


async def test_batched_generation_equals_one_at_a_time(tokenizer: Any, tiny_model: Any) -> None:
    texts = ["Hi!", "Cancel order #W2378156, please.", "I want to return the keyboard and the thermostat I bought."]
    prompts = [tokenizer.encode(t, add_special_tokens=False) for t in texts]
    assert len({len(p) for p in prompts}) == 3, "different lengths exercise the left padding"
    greedy = [SamplingParams(max_tokens=n, temperature=0.0) for n in (5, 9, 7)]
    single = TransformersGenerator(tiny_model, num_threads=1)
    expected = [await single.generate(p, s) for p, s in zip(prompts, greedy, strict=True)]
    batched = TransformersGenerator(tiny_model, num_threads=1, max_batch=8)
    got = await _concurrently(batched, list(zip(prompts, greedy, strict=True)))
    assert max(batched.batch_sizes) > 1, "concurrent requests shared a decoding batch"
    assert [g.token_ids for g in got] == [e.token_ids for e in expected]
    assert [len(g.token_ids) for g in got] == [5, 9, 7], "each request keeps its own max_tokens"
    for g, e in zip(got, expected, strict=True):
        assert g.logprobs == pytest.approx(e.logprobs, abs=1e-4)


async def test_batched_sampling_logprobs_match_a_forward_pass(tokenizer: Any, tiny_model: Any) -> None:
    prompts = [tokenizer.encode(t, add_special_tokens=False) for t in ("Hello there.", "Return #W2378156 now", "Hi")]
    params = [SamplingParams(max_tokens=10, temperature=0.7, seed=s) for s in (1, 2, 3)]
    generator = TransformersGenerator(tiny_model, num_threads=1, max_batch=4)
    results = await _concurrently(generator, list(zip(prompts, params, strict=True)))
    assert max(generator.batch_sizes) > 1
    for prompt, result in zip(prompts, results, strict=True):
        expected = forward_logprobs(tiny_model, prompt, result.token_ids, 0.7)
        assert result.logprobs == pytest.approx(expected, abs=1e-4)
    again = await _concurrently(generator, list(zip(prompts, params, strict=True)))
    assert [r.token_ids for r in again] == [r.token_ids for r in results], "seeded rows reproduce"


async def test_a_failed_batch_fails_every_request_in_it(tokenizer: Any, tiny_model: Any) -> None:
    generator = TransformersGenerator(tiny_model, num_threads=1, max_batch=4)
    ok = tokenizer.encode("Hi", add_special_tokens=False)
    too_long = [tokenizer.vocab_size + 10_000]  # an id outside the embedding table
    params = SamplingParams(max_tokens=3, temperature=0.0)
    with pytest.raises(ExceptionGroup) as caught:
        await _concurrently(generator, [(ok, params), (too_long, params)])
    assert len(caught.value.exceptions) >= 1
    assert all(isinstance(e, IndexError) for e in caught.value.exceptions)


async def test_a_prompt_extending_an_earlier_generation_reuses_its_cache(tokenizer: Any, tiny_model: Any) -> None:
    import copy

    import torch

    model = copy.deepcopy(tiny_model)
    params = SamplingParams(max_tokens=6, temperature=0.7, seed=5)
    cached = TransformersGenerator(model, num_threads=1, prefix_cache=4)
    plain = TransformersGenerator(model, num_threads=1)
    prompt = tokenizer.encode("Hi! I want to cancel an order.", add_special_tokens=False)
    first = await cached.generate(prompt, params)
    follow_up = prompt + first.token_ids + tokenizer.encode(" The order id is #W2378156.", add_special_tokens=False)
    second = await cached.generate(follow_up, params)
    assert cached.prefix_cache.hits == 1
    assert cached.prefix_cache.reused_tokens >= len(prompt)
    expected = await plain.generate(follow_up, params)
    assert second.token_ids == expected.token_ids
    assert second.logprobs == pytest.approx(expected.logprobs, abs=1e-4)
    assert second.logprobs == pytest.approx(forward_logprobs(model, follow_up, second.token_ids, 0.7), abs=1e-4)

    # a prompt that only shares part of a cached one does not use it, and new weights drop every cache
    await cached.generate(tokenizer.encode("Hello.", add_special_tokens=False), params)
    assert cached.prefix_cache.hits == 1
    assert len(cached.prefix_cache) > 0
    await cached.update_weights({k: v + 0.01 * torch.randn_like(v) for k, v in model.state_dict().items()}, 1)
    assert len(cached.prefix_cache) == 0
    third = await cached.generate(follow_up, params)
    assert cached.prefix_cache.hits == 1
    assert third.logprobs == pytest.approx(forward_logprobs(model, follow_up, third.token_ids, 0.7), abs=1e-4)
