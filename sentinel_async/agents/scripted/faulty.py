"""Faulty experts: each breaks one rule of `ScriptedExpert` in a deterministic, attributable way.

Every variant changes only its first eligible write (or the turn before it) and otherwise behaves like the
expert, so a failed episode points at exactly one turn. `applies_to(task, domain)` says whether the fault
can fire on a task and makes it score 0 (the reward is tau2's: DB state, communicated info, termination).
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from sentinel_async.agents.scripted.expert import STOP, ScriptedExpert, Step
from sentinel_async.agents.scripted.user_script import derive_user_script
from sentinel_async.messages import ChatMessage, ToolCall
from sentinel_async.tools.base import TaskSpec
from sentinel_async.tools.retail import RetailDomain


def _write_count(task: TaskSpec, domain: RetailDomain) -> int:
    """How many database writes the task's (successful) gold actions make."""
    return sum(1 for intent in derive_user_script(task, domain).intents if intent.kind not in ("info", "transfer"))


def _changes_without(task: TaskSpec, domain: RetailDomain, keep: Callable[[int], bool]) -> bool:
    """Whether replaying the gold with only the writes `keep(index)` accepts ends in another database."""

    calls = [ToolCall(id=f"g{n}", name=a.name, arguments=dict(a.arguments)) for n, a in enumerate(task.gold_actions)]
    probe = domain.new_environment()
    succeeded = [not probe.call(call).error for call in calls]
    writes = [c for c, ok in zip(calls, succeeded, strict=True) if ok and domain.is_write_tool(c.name)]

    def final(accept: Callable[[int], bool]) -> object:
        env = domain.new_environment()
        for index, call in enumerate(writes):
            if accept(index):
                env.call(call)
        return env.changes()

    return final(keep) != final(lambda _: True)


class FaultyExpert(ScriptedExpert):
    """Base of the faulty variants: `fault_step` is the plan index where the fault fires (None: never)."""

    fault: str = "none"

    @property
    def fault_step(self) -> int | None:
        return next((i for i, s in enumerate(self.plan) if s.kind == "call" and s.write_index is not None), None)

    @classmethod
    def applies_to(cls, task: TaskSpec, domain: RetailDomain) -> bool:
        """Whether the gold without the first write ends in another database (the fault drops that write)."""
        return _write_count(task, domain) >= 1 and _changes_without(task, domain, lambda index: index != 0)


class WrongItemExpert(FaultyExpert):
    """Item grounding: confirms the right new variant in text, but calls the write with a sibling variant
    (same product, another item id; available when possible) in place of the first new item."""

    fault = "wrong_item"

    @property
    def fault_step(self) -> int | None:
        return next(
            (i for i, s in enumerate(self.plan) if s.kind == "call" and s.call and "new_item_ids" in s.call.arguments),
            None,
        )

    @classmethod
    def applies_to(cls, task: TaskSpec, domain: RetailDomain) -> bool:
        return any(i.new_items for i in derive_user_script(task, domain).intents)

    def render(self, step: Step) -> ChatMessage:
        if self._cursor - 1 != self.fault_step or step.call is None:
            return super().render(step)
        args = dict(step.call.arguments)
        new_ids = list(args["new_item_ids"])
        args["new_item_ids"] = [self.sibling(args["item_ids"][0], new_ids[0], step), *new_ids[1:]]
        call = msgspec.structs.replace(step.call, arguments=args)
        return ChatMessage(role="assistant", tool_calls=(call,))

    def sibling(self, old_id: str, new_id: str, step: Step) -> str:
        """Another variant of the same product: the first available one by item id, else any other one."""
        assert step.write_index is not None
        product = self.domain.products[self.intents[step.write_index].new_items[0].product_id]
        others = sorted((v for k, v in product.variants.items() if k not in (old_id, new_id)), key=lambda v: v.item_id)
        if not others:
            raise ValueError(f"{product.name} has no sibling variant")
        return str(next((v for v in others if v.available), others[0]).item_id)


class NoConfirmationExpert(FaultyExpert):
    """Writes without listing the details or asking for a yes. The `ScriptedUser` objects to the unconfirmed
    write and leaves, so the task's later writes never happen (fires on tasks with two or more writes)."""

    fault = "no_confirmation"
    confirm_writes = False

    @classmethod
    def applies_to(cls, task: TaskSpec, domain: RetailDomain) -> bool:
        return _write_count(task, domain) >= 2 and _changes_without(task, domain, lambda index: index == 0)


class SkipsWriteExpert(FaultyExpert):
    """Gets the user's yes, then skips the first write and claims it was done."""

    fault = "skips_write"

    def render(self, step: Step) -> ChatMessage:
        if self._cursor - 1 != self.fault_step:
            return super().render(step)
        outcome = self.plan[self._cursor]  # say the write's outcome message instead of making the write
        self._cursor += 1
        return ChatMessage(role="assistant", content=outcome.text)


class PrematureStopExpert(FaultyExpert):
    """Ends the conversation with ###STOP### instead of asking to confirm the first write."""

    fault = "premature_stop"

    @classmethod
    def applies_to(cls, task: TaskSpec, domain: RetailDomain) -> bool:
        return _write_count(task, domain) >= 1 and _changes_without(task, domain, lambda index: False)

    @property
    def fault_step(self) -> int | None:
        return next((i for i, s in enumerate(self.plan) if s.kind == "confirm"), None)

    def render(self, step: Step) -> ChatMessage:
        if self._cursor - 1 == self.fault_step:
            return ChatMessage(role="assistant", content=f"Your request has been handled. Goodbye! {STOP}")
        return super().render(step)


class MalformedCallExpert(FaultyExpert):
    """Replaces the first write with a malformed call, then claims success.

    `mode="unknown_tool"` calls a tool that does not exist; `mode="bad_arguments"` renames the call's
    `order_id` / `user_id` argument (so a required argument is missing).
    """

    fault = "malformed_call"

    def __init__(self, task: TaskSpec, domain: RetailDomain, *, mode: str = "unknown_tool") -> None:
        if mode not in ("unknown_tool", "bad_arguments"):
            raise ValueError(f"unknown mode {mode!r}")
        self.mode = mode
        super().__init__(task, domain)

    def render(self, step: Step) -> ChatMessage:
        if self._cursor - 1 != self.fault_step or step.call is None:
            return super().render(step)
        return ChatMessage(role="assistant", tool_calls=(self.malformed(step.call),))

    def malformed(self, call: ToolCall) -> ToolCall:
        if self.mode == "unknown_tool":
            name = call.name.replace("_pending", "").replace("_delivered", "")
            return msgspec.structs.replace(call, name=name if name != call.name else f"update_{call.name}")
        args = {
            ("orderId" if k == "order_id" else "userId" if k == "user_id" else k): v for k, v in call.arguments.items()
        }
        return msgspec.structs.replace(call, arguments=args)


FAULTY_EXPERTS: tuple[type[FaultyExpert], ...] = (
    WrongItemExpert,
    NoConfirmationExpert,
    SkipsWriteExpert,
    PrematureStopExpert,
    MalformedCallExpert,
)
