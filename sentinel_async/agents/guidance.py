"""Expert-guided episodes: an expert plays, and each of its turns is recorded as the policy's own tokens.

A GRPO group teaches only where its rewards differ. On a task the policy never solves, every episode fails, often
at the same place, and the group is dropped or teaches only which failure got further. With guidance
(`rollout.expert_episodes`), each group also holds an episode the expert played (purpose "guide"): its turns
are the ids the policy would have had to sample to say the expert's messages, with the policy's own log-probs
of them, so the group normalises a solved attempt against the policy's failures and the objective raises the
probability of the expert's turns with that advantage (off-policy guidance, as in LUFFY, Yan et al. 2025).
Guide episodes count for the Solver only: the pool's pass rates, the Controller and reported rewards ignore them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from sentinel_async.agents.clients.token_client import TokenPolicy
from sentinel_async.agents.protocols import Policy, PolicyTurn
from sentinel_async.messages import ChatMessage


class GuidedPolicy:
    """A `Policy` whose messages come from `expert` and whose tokens and log-probs come from `student`.

    `rename` (applied to every message, the same way on every turn of an episode) makes the recorded tokens
    those of another conversation: renaming the customer (`rollout.rename_guides`) makes the guide about another
    customer than the task's, so a step on it teaches copying a name rather than one customer's. The message the
    episode goes on with is the expert's, as said."""

    def __init__(
        self, expert: Policy, student: TokenPolicy, *, rename: Callable[[ChatMessage], ChatMessage] | None = None
    ) -> None:
        self.expert = expert
        self.student = student
        self.rename = rename

    async def act(self, conversation: Sequence[ChatMessage], tools: list[dict[str, Any]]) -> PolicyTurn:
        turn = await self.expert.act(conversation, tools)
        if self.rename is None:
            return await self.student.forced_turn(conversation, tools, turn.message)
        renamed = [self.rename(message) for message in conversation]
        forced = await self.student.forced_turn(renamed, tools, self.rename(turn.message))
        return msgspec.structs.replace(forced, message=turn.message)
