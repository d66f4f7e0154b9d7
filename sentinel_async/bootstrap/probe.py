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

from sentinel_async.bootstrap.demos import conversation_samples
from sentinel_async.bootstrap.ids import PAYMENT_KINDS
from sentinel_async.bootstrap.tokenizer import mask_runs
from sentinel_async.messages import ChatMessage
from sentinel_async.prompt_view import PromptView, view_tool_results


class TurnAccuracy(msgspec.Struct, frozen=True, kw_only=True):
    """Exact-turn accuracy overall and by turn kind, and token accuracy over assistant tokens."""

    turns: int
    exact: float
    token_accuracy: float
    by_kind: dict[str, tuple[int, float]]
    """kind -> (turns, exact fraction)."""
    missed: list[tuple[str, ...]] = []
    """Per conversation, the kinds of the turns the model does not reproduce, in order."""
    payment_kinds: tuple[int, int] = (0, 0)
    """(right, of): at each payment method id an assistant turn writes (`paypal_7644869`), whether the model's
    greedy choice of its first token, the one that says the kind, is right (teacher-forced)."""

    def calls_from_success(self) -> dict[int, int]:
        """How many conversations miss 0, 1, 2, ... tool calls (messages, `say`, not counted): a conversation
        that misses none is one the model could play through; one that misses one needs one more skill."""
        counts = Counter(sum(kind != "say" for kind in kinds) for kinds in self.missed)
        return dict(sorted(counts.items()))

    def format(self) -> str:
        kinds = ", ".join(f"{k} {acc:.2f} ({n})" for k, (n, acc) in sorted(self.by_kind.items()))
        right, of = self.payment_kinds
        return (
            f"exact turns {self.exact:.3f} of {self.turns}, assistant tokens {self.token_accuracy:.3f}; payment kinds"
            f" {right} of {of}; {kinds}"
        )


def _turn_kind(message: ChatMessage) -> str:
    return message.tool_calls[0].name if message.tool_calls else "say"


def turn_accuracy(
    model: Any,
    tokenizer: Any,
    conversations: Sequence[Sequence[ChatMessage]],
    tools: list[dict[str, Any]],
    view: PromptView | None = None,
) -> TurnAccuracy:
    """Teacher-forced exact-turn accuracy of `model` on `conversations` (system prompt first), each turn on the
    prompt `view` shows the policy (whole conversations when None)."""
    import torch

    from sentinel_async.devices import model_device

    view = view or PromptView()
    device = model_device(model)
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    tokens_right = tokens = 0
    missed: list[tuple[str, ...]] = []
    kind_prefixes = [tokenizer.encode(f"{kind}_", add_special_tokens=False) for kind in PAYMENT_KINDS]
    kinds_right = kinds_seen = 0
    for conversation in conversations:
        wrong: list[str] = []
        turn_kinds = [_turn_kind(m) for m in conversation if m.role == "assistant"]
        samples = conversation_samples(tokenizer, view_tool_results(conversation, view.tool_view), tools, view.window)
        runs = [mask_runs(sample.mask) for sample in samples]  # the template renders one run per assistant message
        if sum(map(len, runs)) != len(turn_kinds):
            raise ValueError(f"{sum(map(len, runs))} assistant spans for {len(turn_kinds)} assistant messages")
        kinds = iter(turn_kinds)
        for sample, sample_runs in zip(samples, runs, strict=True):
            with torch.inference_mode():
                logits = model(input_ids=torch.tensor([sample.ids], device=device)).logits[0]
            guess = logits.argmax(-1).tolist()
            for start, end in sample_runs:
                kind = next(kinds)
                turn_hits = [guess[i - 1] == sample.ids[i] for i in range(max(1, start), end)]
                total[kind] += 1
                right[kind] += all(turn_hits)
                if not all(turn_hits):
                    wrong.append(kind)
                tokens_right += sum(turn_hits)
                tokens += len(turn_hits)
                for i in _kind_starts(sample.ids, start, end, kind_prefixes):
                    kinds_seen += 1
                    kinds_right += guess[i - 1] == sample.ids[i]
        missed.append(tuple(wrong))
    turns = sum(total.values())
    return TurnAccuracy(
        turns=turns,
        exact=sum(right.values()) / turns if turns else 0.0,
        token_accuracy=tokens_right / tokens if tokens else 0.0,
        by_kind={k: (n, right[k] / n) for k, n in total.items()},
        missed=missed,
        payment_kinds=(kinds_right, kinds_seen),
    )


def _kind_starts(ids: Sequence[int], start: int, end: int, prefixes: Sequence[Sequence[int]]) -> list[int]:
    """Positions in `ids[start:end]` where a payment kind's tokens (`paypal_`) begin."""
    return [
        i
        for i in range(max(1, start), end)
        if any(list(ids[i : i + len(prefix)]) == list(prefix) for prefix in prefixes)
    ]
