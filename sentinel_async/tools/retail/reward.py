"""The result of scoring one episode, and tau2's termination rule."""

from __future__ import annotations

import msgspec

# tau2's TerminationReason values. Only an agent or user stop can score; any other end scores 0.
AGENT_STOP = "agent_stop"
USER_STOP = "user_stop"
SCORING_TERMINATIONS = frozenset({AGENT_STOP, USER_STOP})


class RewardBreakdown(msgspec.Struct, frozen=True, kw_only=True):
    """One episode's reward and its parts (tau2's retail reward: product over the task's reward basis).

    `reward_basis` names the components multiplied into `reward` (empty when the termination gate
    failed or the task has no evaluation criteria). `db`, `communicate` and `action` are each component's
    score (None when not computed); `action` is diagnostic unless "ACTION" is in the basis.
    """

    reward: float
    termination_reason: str
    terminated_ok: bool
    reward_basis: tuple[str, ...] = ()
    db: float | None = None
    communicate: float | None = None
    action: float | None = None
    missing_info: tuple[str, ...] = ()
    unmatched_actions: tuple[str, ...] = ()
    replay_mismatches: int = 0
    progress: float | None = None
    """The share of gold actions matched (`evaluation.action_progress`); not part of `reward`."""
    note: str = ""

    @property
    def success(self) -> bool:
        """tau2's success test: reward within 1e-6 of 1.0."""
        return abs(self.reward - 1.0) <= 1e-6
