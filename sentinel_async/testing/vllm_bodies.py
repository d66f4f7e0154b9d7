"""vLLM's OpenAI-server response bodies, built as plain dicts with every field vLLM sends (for `FakeVLLM`).

Field lists follow `vllm/entrypoints/openai/{chat_completion,completion}/protocol.py`,
`engine/protocol.py` (`ModelCard`, `UsageInfo`) and `completion/serving.py` (`_create_completion_logprobs`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """vLLM's `UsageInfo`."""
    return {
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "completion_tokens": completion_tokens,
        "prompt_tokens_details": None,
    }


def model_card(name: str, root: str, parent: str | None, max_model_len: int | None) -> dict[str, Any]:
    """One `GET /v1/models` entry (a LoRA adapter has `parent` = the base model)."""
    now = int(time.time())
    permission = {
        "id": f"modelperm-{uuid.uuid4().hex}",
        "object": "model_permission",
        "created": now,
        "allow_create_engine": False,
        "allow_sampling": True,
        "allow_logprobs": True,
        "allow_search_indices": False,
        "allow_view": True,
        "allow_fine_tuning": False,
        "organization": "*",
        "group": None,
        "is_blocking": False,
    }
    return {
        "id": name,
        "object": "model",
        "created": now,
        "owned_by": "vllm",
        "root": root,
        "parent": parent,
        "max_model_len": max_model_len,
        "permission": [permission],
    }


def chat_completion_body(
    model: str,
    messages: list[Any],
    content: str | None,
    tool_calls: list[tuple[str, str]],
    reasoning_content: str | None = None,
    finish_reason: str | None = None,
) -> dict[str, Any]:
    """A non-streaming chat completion; `tool_calls` are `(name, arguments JSON text)` pairs.

    As with vLLM's tool parsers, `content` is null when the model produced only tool calls.
    Token counts are rough word counts (the fake has no tokenizer).
    """
    calls = [
        {"id": f"chatcmpl-tool-{uuid.uuid4().hex}", "type": "function", "function": {"name": n, "arguments": a}}
        for n, a in tool_calls
    ]
    content = content if (content or not calls) else None
    message = {
        "role": "assistant",
        "content": content,
        "refusal": None,
        "annotations": None,
        "audio": None,
        "function_call": None,
        "tool_calls": calls,
        "reasoning_content": reasoning_content,
    }
    prompt = sum(len(str(m.get("content") or "").split()) + 4 for m in messages if isinstance(m, dict))
    completion = len((content or "").split()) + sum(len(a.split()) + 4 for _, a in tool_calls)
    choice = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": finish_reason or ("tool_calls" if calls else "stop"),
        "stop_reason": None,
        "token_ids": None,
    }
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "service_tier": None,
        "system_fingerprint": None,
        "usage": usage(prompt, completion),
        "prompt_logprobs": None,
        "prompt_token_ids": None,
        "kv_transfer_params": None,
    }


def completion_body(
    model: str,
    request: dict[str, Any],
    prompt: list[int],
    ids: list[int],
    logprobs: list[float],
    finish_reason: str,
    text: str | None,
    detokenize: Callable[[list[int]], str] | None,
    prompt_logprobs: list[float] | None = None,
) -> dict[str, Any]:
    """A non-streaming completion for a token-id prompt, honouring the request's `logprobs`,
    `return_tokens_as_token_ids` (tokens as `"token_id:<id>"`), `return_token_ids`, `stop_token_ids` and
    `prompt_logprobs` (`prompt_logprobs` gives the log-prob of each prompt token after the first)."""
    as_ids = bool(request.get("return_tokens_as_token_ids"))

    def token_str(i: int) -> str:
        return f"token_id:{i}" if as_ids or detokenize is None else detokenize([i])

    wire_logprobs = None
    if request.get("logprobs") is not None:
        tokens = [token_str(i) for i in ids]
        offsets, pos = [], 0
        for t in tokens:
            offsets.append(pos)
            pos += len(t)
        wire_logprobs = {
            "text_offset": offsets,
            "token_logprobs": logprobs,
            "tokens": tokens,
            "top_logprobs": [{t: lp} for t, lp in zip(tokens, logprobs, strict=True)],
        }
    wire_prompt_logprobs: list[dict[str, Any] | None] | None = None
    if request.get("prompt_logprobs") is not None:
        values = prompt_logprobs if prompt_logprobs is not None else [-0.5] * (len(prompt) - 1)
        wire_prompt_logprobs = [None] + [
            {str(i): {"logprob": lp, "rank": 1, "decoded_token": token_str(i)}}
            for i, lp in zip(prompt[1:], values, strict=True)
        ]
    stop_ids = request.get("stop_token_ids") or []
    with_ids = bool(request.get("return_token_ids"))
    choice = {
        "index": 0,
        "text": text if text is not None else (detokenize(ids) if detokenize else ""),
        "logprobs": wire_logprobs,
        "finish_reason": finish_reason,
        # vLLM: the stop token id when a `stop_token_ids` entry ended generation, null for EOS or length.
        "stop_reason": ids[-1] if finish_reason == "stop" and ids and ids[-1] in stop_ids else None,
        "token_ids": ids if with_ids else None,
        "prompt_logprobs": wire_prompt_logprobs,
        "prompt_token_ids": prompt if with_ids else None,
        "routed_experts": None,
    }
    return {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "service_tier": None,
        "system_fingerprint": None,
        "usage": usage(len(prompt), len(ids)),
        "kv_transfer_params": None,
    }
