"""Copy check: how often a model copies each kind of value in fixed slot-copy exercises (greedy, exact).

The slot-copy curriculum (`sentinel_async.bootstrap.sft`) judges copying by the mean loss over the copied
tokens, where an order id is seven digit tokens and a customer's name one token. A model can pass that while it
writes one name for every customer (measured on the default `tiny` build b16492b1e60c6fe6: first names 5 of 60
exercises, "Lei" for most, order ids 52 of 60; authentication by name and zip 0 of 35 test turns). The check
asks for each kind on its own.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sentinel_async.bootstrap.demos import Sample

if TYPE_CHECKING:
    from sentinel_async.bootstrap.slots import SlotCopy


class CopyCheck:
    """`size` fixed easy exercises per kind in `kinds` (seeded by `seed`, the same at every check)."""

    def __init__(self, slots: SlotCopy, kinds: Sequence[str], *, size: int = 32, seed: int = 0) -> None:
        if size < 1:
            raise ValueError(f"a copy check needs at least one exercise per kind, got {size}")
        rng = random.Random(seed)
        self.exercises = {kind: [slots.exercise(rng, kind=kind) for _ in range(size)] for kind in kinds}

    def rates(self, model: Any, pad_id: int = 0) -> dict[str, float]:
        """The share of each kind's exercises whose copied value the model predicts token for token (greedy,
        teacher-forced). Leaves the model in the training mode it was in."""
        import torch

        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode():
                return {kind: _exact_share(model, samples, pad_id) for kind, samples in self.exercises.items()}
        finally:
            model.train(was_training)

    def passes(self, model: Any, minimum: float, pad_id: int = 0) -> bool:
        """Whether every kind is copied in at least `minimum` of its exercises."""
        return all(rate >= minimum for rate in self.rates(model, pad_id).values())


def _exact_share(model: Any, samples: Sequence[Sample], pad_id: int) -> float:
    import torch

    from sentinel_async.devices import model_device

    width = max(len(s.ids) for s in samples)
    ids = torch.full((len(samples), width), pad_id, dtype=torch.long)
    for row, sample in enumerate(samples):
        ids[row, : len(sample.ids)] = torch.tensor(sample.ids)
    guess = model(input_ids=ids.to(model_device(model))).logits.argmax(-1).cpu()
    exact = 0
    for row, sample in enumerate(samples):
        positions = [i for i in range(1, len(sample.ids)) if sample.mask[i]]
        exact += all(int(guess[row, i - 1]) == sample.ids[i] for i in positions)
    return exact / len(samples)
