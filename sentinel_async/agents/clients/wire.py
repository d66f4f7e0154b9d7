"""Typed views of the OpenAI/vLLM response bodies the clients read (unknown fields are ignored).

Shapes follow vLLM's `vllm/entrypoints/openai/{chat_completion,completion}/protocol.py`.
"""

from __future__ import annotations

import msgspec


class Usage(msgspec.Struct, frozen=True, kw_only=True):
    """Token counts of one request."""

    prompt_tokens: int = 0
    completion_tokens: int | None = 0
    total_tokens: int = 0


class WireFunction(msgspec.Struct, frozen=True, kw_only=True):
    """`tool_calls[i].function`: `arguments` is a JSON string, possibly malformed."""

    name: str
    arguments: str = ""


class WireToolCall(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of an assistant message's `tool_calls`."""

    function: WireFunction
    id: str | None = None
    type: str = "function"


class WireChatMessage(msgspec.Struct, frozen=True, kw_only=True):
    """`choices[i].message` of a chat completion (vLLM puts reasoning in `reasoning_content`/`reasoning`)."""

    role: str = "assistant"
    content: str | None = None
    tool_calls: list[WireToolCall] | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None


class WireChatChoice(msgspec.Struct, frozen=True, kw_only=True):
    """One choice of a chat completion."""

    message: WireChatMessage
    index: int = 0
    finish_reason: str | None = None


class ChatCompletionResponse(msgspec.Struct, frozen=True, kw_only=True):
    """`POST /v1/chat/completions` response (non-streaming)."""

    id: str
    model: str
    choices: list[WireChatChoice]
    object: str = "chat.completion"
    usage: Usage | None = None


class CompletionLogProbs(msgspec.Struct, frozen=True, kw_only=True):
    """`choices[i].logprobs` of a completion: parallel lists, one entry per generated token.

    With `return_tokens_as_token_ids=true`, `tokens` are strings `"token_id:<id>"`.
    """

    tokens: list[str] = msgspec.field(default_factory=list)
    token_logprobs: list[float | None] = msgspec.field(default_factory=list)
    top_logprobs: list[dict[str, float] | None] | None = None
    text_offset: list[int] = msgspec.field(default_factory=list)


class PromptLogprob(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of `choices[i].prompt_logprobs[t]` (keyed by token id): a prompt token's log-prob."""

    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


class CompletionChoice(msgspec.Struct, frozen=True, kw_only=True):
    """One choice of a completion; `token_ids`/`prompt_token_ids` appear with `return_token_ids=true`."""

    text: str
    index: int = 0
    logprobs: CompletionLogProbs | None = None
    finish_reason: str | None = None
    stop_reason: int | str | None = None
    token_ids: list[int] | None = None
    prompt_token_ids: list[int] | None = None
    prompt_logprobs: list[dict[str, PromptLogprob] | None] | None = None
    """With `prompt_logprobs=k`: per prompt position (None for the first), the prompt token's entry (by id)
    and the top k others."""


class CompletionResponse(msgspec.Struct, frozen=True, kw_only=True):
    """`POST /v1/completions` response (non-streaming)."""

    id: str
    model: str
    choices: list[CompletionChoice]
    object: str = "text_completion"
    usage: Usage | None = None


class ModelCard(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of `GET /v1/models`: the base model, or a LoRA adapter (with `parent`)."""

    id: str
    object: str = "model"
    root: str | None = None
    parent: str | None = None
    max_model_len: int | None = None


class ModelList(msgspec.Struct, frozen=True, kw_only=True):
    """`GET /v1/models` response."""

    data: list[ModelCard]
    object: str = "list"
