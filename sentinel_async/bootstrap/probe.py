"""Teacher-forced turn accuracy: how many of an expert's turns a model would reproduce token for token.

A cheap, fine-grained view of what a policy has learnt, before any episode is played: render expert
conversations (for instance `DialogueExpert` on the test split), run the model once over each, and count an
assistant turn as right when the model's greedy choice matches every one of its tokens given the expert's
history. Turns are grouped by kind: the tool a call names, or `say` for a message.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import msgspec

from sentinel_async.messages import ChatMessage


class TurnAccuracy(msgspec.Struct, frozen=True, kw_only=True):
    """Exact-turn accuracy overall and by turn kind, and token accuracy over assistant tokens."""

    turns: int
    exact: float
    token_accuracy: float
    by_kind: dict[str, tuple[int, float]]
    """kind -> (turns, exact fraction)."""

    def format(self) -> str:
        kinds = ", ".join(f"{k} {acc:.2f} ({n})" for k, (n, acc) in sorted(self.by_kind.items()))
        return f"exact turns {self.exact:.3f} of {self.turns}, assistant tokens {self.token_accuracy:.3f}; {kinds}"


def _turn_kind(message: ChatMessage) -> str:
    return message.tool_calls[0].name if message.tool_calls else "say"


def turn_accuracy(
    model: Any, tokenizer: Any, conversations: Sequence[Sequence[ChatMessage]], tools: list[dict[str, Any]]
) -> TurnAccuracy:
    """Teacher-forced exact-turn accuracy of `model` on `conversations` (system prompt first)."""
    import torch

    from sentinel_async.agents.clients.token_client import to_template_messages
    from sentinel_async.bootstrap.tokenizer import mask_runs, render_ids
    from sentinel_async.devices import model_device

    device = model_device(model)
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    tokens_right = tokens = 0
    for conversation in conversations:
        ids, mask = render_ids(tokenizer, to_template_messages(conversation), tools)
        with torch.inference_mode():
            logits = model(input_ids=torch.tensor([ids], device=device)).logits[0]
        predicted = logits.argmax(-1).tolist()
        hits = [predicted[i - 1] == ids[i] for i in range(1, len(ids))]
        kinds = [_turn_kind(m) for m in conversation if m.role == "assistant"]
        runs = mask_runs(mask)
        if len(runs) != len(kinds):  # the template renders one run per assistant message
            raise ValueError(f"{len(runs)} assistant spans for {len(kinds)} assistant messages")
        for kind, (start, end) in zip(kinds, runs, strict=True):
            turn_hits = hits[max(0, start - 1) : end - 1]
            total[kind] += 1
            right[kind] += all(turn_hits)
            tokens_right += sum(turn_hits)
            tokens += len(turn_hits)
    turns = sum(total.values())
    return TurnAccuracy(
        turns=turns,
        exact=sum(right.values()) / turns if turns else 0.0,
        token_accuracy=tokens_right / tokens if tokens else 0.0,
        by_kind={k: (n, right[k] / n) for k, n in total.items()},
    )
