"""Samples rebuild exactly from the recorded ids: the prefix check, the loss mask and aligned log-probs."""

from __future__ import annotations

from sentinel_async.agents.solver import build_samples, load_trace
from sentinel_async.events import AssistantMessage, EpisodeStarted
from sentinel_async.messages import TokenTrace
from sentinel_async.store import EventFilter, MemoryEventStore


def turn(n: int, prompt: list[int], sampled: list[int]) -> AssistantMessage:
    lps = [-0.5 - i for i in range(len(sampled))]
    return AssistantMessage(
        episode_id="e", turn=n, tokens=TokenTrace(prompt_ids=prompt, sampled_ids=sampled, logprobs=lps)
    )


def test_extending_turns_concatenate_and_a_non_extending_turn_starts_a_new_sample() -> None:
    turns = [
        AssistantMessage(episode_id="e", turn=0, content="greeting without tokens"),
        turn(1, [1, 2, 3], [4, 5]),
        turn(3, [1, 2, 3, 4, 5, 6, 7], [8]),
        turn(5, [1, 2, 9], [10, 11]),  # does not extend [1..8]: a new sample
    ]
    samples, breaks = build_samples("e", turns)
    assert breaks == 1
    first, second = samples
    assert first.input_ids == [1, 2, 3, 4, 5, 6, 7, 8]
    assert first.loss_mask == [0, 0, 0, 1, 1, 0, 0, 1]
    assert first.rollout_logprobs == [0.0, 0.0, 0.0, -0.5, -1.5, 0.0, 0.0, -0.5]
    assert second.input_ids == [1, 2, 9, 10, 11]
    assert second.loss_mask == [0, 0, 0, 1, 1]
    assert second.rollout_logprobs == [0.0, 0.0, 0.0, -0.5, -1.5]
    assert (first.index, second.index) == (0, 1)


def test_real_episodes_rebuild_from_their_ids(store: MemoryEventStore) -> None:
    episodes = [r.payload for r in store.read(filter=EventFilter.of(types=[EpisodeStarted]))]
    assert len(episodes) == 8
    extended = 0
    for started in episodes:
        assert isinstance(started, EpisodeStarted)
        trace = load_trace(store, started.episode_id)
        turns = [
            r.payload.tokens
            for r in store.read_stream(f"episode-{started.episode_id}")
            if isinstance(r.payload, AssistantMessage) and r.payload.tokens is not None
        ]
        assert len(turns) == 2
        assert sum(s.num_sampled for s in trace.samples) == sum(len(t.sampled_ids) for t in turns)
        assert len(trace.samples) == 1 + trace.prefix_breaks
        extended += trace.prefix_breaks == 0
        for tokens in turns:  # every turn is a prefix of its sample, with its own ids and log-probs
            full = tokens.prompt_ids + tokens.sampled_ids
            (sample,) = [s for s in trace.samples if s.input_ids[: len(full)] == full]
            start = len(tokens.prompt_ids)
            assert sample.loss_mask[start : len(full)] == [1] * len(tokens.sampled_ids)
            assert sample.rollout_logprobs[start : len(full)] == tokens.logprobs
        for sample in trace.samples:
            sampled = [i for s in turns for i in s.sampled_ids]
            picked = [i for i, m in zip(sample.input_ids, sample.loss_mask, strict=True) if m]
            assert all(i in sampled for i in picked)
            assert len(sample.loss_mask) == len(sample.input_ids) == len(sample.rollout_logprobs)
    assert extended >= 1, "at least one real episode kept the prefix across turns"
