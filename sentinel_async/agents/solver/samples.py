"""Training samples rebuilt from an episode's recorded token ids (never re-rendered).

Per episode, turns are concatenated while each turn's `prompt_ids` extend the previous turn's prompt plus
sampled ids (the prefix check); a turn that does not extend them starts a new sample. The loss mask is 1
exactly on sampled ids, and the rollout log-probs are aligned to them (0.0 elsewhere).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec

from sentinel_async.agents.recording import episode_stream
from sentinel_async.events import AssistantMessage, EpisodeFinished, EpisodeStarted, Event, RecordedEvent
from sentinel_async.store import EventStore


class TrainingSample(msgspec.Struct, frozen=True, kw_only=True):
    """One token sequence: `loss_mask[i]` is 1 where `input_ids[i]` was sampled by the policy."""

    episode_id: str
    index: int
    input_ids: list[int]
    loss_mask: list[int]
    rollout_logprobs: list[float]

    @property
    def num_sampled(self) -> int:
        return sum(self.loss_mask)


class EpisodeTrace(msgspec.Struct, frozen=True, kw_only=True):
    """A finished episode as training data: its samples, reward, group and the policy versions of its turns."""

    episode_id: str
    task_id: str
    group_id: str | None
    reward: float
    started_version: int
    turn_versions: list[int | None]
    samples: list[TrainingSample]
    prefix_breaks: int = 0
    progress: float = 0.0
    """The share of the task's gold actions the episode matched (`EpisodeFinished.breakdown["progress"]`)."""


class IncompleteEpisodeError(ValueError):
    """Raised when an episode's events lack an `EpisodeStarted` or `EpisodeFinished`."""


def build_samples(episode_id: str, turns: Iterable[AssistantMessage]) -> tuple[list[TrainingSample], int]:
    """The samples of an episode's token-level turns, and how many times the prefix check broke."""
    samples: list[TrainingSample] = []
    ids: list[int] = []
    mask: list[int] = []
    logprobs: list[float] = []
    breaks = 0

    def close() -> None:
        if ids and any(mask):
            samples.append(
                TrainingSample(
                    episode_id=episode_id, index=len(samples), input_ids=ids, loss_mask=mask, rollout_logprobs=logprobs
                )
            )

    for turn in turns:
        trace = turn.tokens
        if trace is None:
            continue
        if len(trace.logprobs) != len(trace.sampled_ids):
            raise ValueError(f"episode {episode_id!r} turn {turn.turn}: sampled ids and log-probs differ in length")
        prompt = trace.prompt_ids
        if ids and len(prompt) >= len(ids) and prompt[: len(ids)] == ids:
            new_prompt = prompt[len(ids) :]
        else:
            if ids:
                breaks += 1
                close()
            ids, mask, logprobs = [], [], []
            new_prompt = list(prompt)
        ids = [*ids, *new_prompt, *trace.sampled_ids]
        mask = [*mask, *([0] * len(new_prompt)), *([1] * len(trace.sampled_ids))]
        logprobs = [*logprobs, *([0.0] * len(new_prompt)), *trace.logprobs]
    close()
    return samples, breaks


def trace_from_events(events: Sequence[RecordedEvent | Event]) -> EpisodeTrace:
    """An episode's trace from its stream's events (EpisodeStarted first, EpisodeFinished last)."""
    payloads = [e.payload if isinstance(e, RecordedEvent) else e for e in events]
    started = next((p for p in payloads if isinstance(p, EpisodeStarted)), None)
    finished = next((p for p in payloads if isinstance(p, EpisodeFinished)), None)
    if started is None or finished is None:
        raise IncompleteEpisodeError("an episode needs both EpisodeStarted and EpisodeFinished to be trained on")
    turns = [p for p in payloads if isinstance(p, AssistantMessage) and p.tokens is not None]
    samples, breaks = build_samples(started.episode_id, turns)
    return EpisodeTrace(
        episode_id=started.episode_id,
        task_id=started.task_id,
        group_id=started.group_id,
        reward=finished.reward,
        started_version=started.policy_version,
        turn_versions=[t.policy_version for t in turns],
        samples=samples,
        prefix_breaks=breaks,
        progress=finished.breakdown.get("progress", 0.0),
    )


def load_trace(store: EventStore, episode_id: str) -> EpisodeTrace:
    """Read an episode's stream and rebuild its trace."""
    events = store.read_stream(episode_stream(episode_id))
    if not events:
        raise KeyError(f"no episode {episode_id!r} in the log")
    return trace_from_events(events)
