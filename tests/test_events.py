"""The event vocabulary: tagged encoding, and old logs staying readable."""

from __future__ import annotations

import shutil
from pathlib import Path

import msgspec
import pytest

from sentinel_async.events import (
    EVENT_TYPES,
    AssistantMessage,
    EpisodeFinished,
    GroupsDropped,
    RecordedEvent,
    UserMessage,
    decode_payload,
    decode_record,
    encode_record,
)
from sentinel_async.render import render
from sentinel_async.store import SQLiteEventStore

FIXTURES = Path(__file__).parent / "fixtures"


def test_payloads_are_tagged_with_their_snake_case_type() -> None:
    data = msgspec.json.encode(UserMessage(episode_id="e", turn=1, content="hi"))
    assert data == b'{"type":"user_message","episode_id":"e","turn":1,"content":"hi"}'
    assert decode_payload(data) == UserMessage(episode_id="e", turn=1, content="hi")


def test_unknown_type_and_wrong_field_types_are_rejected_by_name() -> None:
    with pytest.raises(msgspec.ValidationError, match="Invalid value 'from_the_future'"):
        decode_payload(b'{"type":"from_the_future"}')
    with pytest.raises(msgspec.ValidationError, match=r"Expected `int`, got `str` - at `\$.turn`"):
        decode_payload(b'{"type":"user_message","episode_id":"e","turn":"one","content":"hi"}')


def test_events_are_frozen() -> None:
    event = UserMessage(episode_id="e", turn=1, content="hi")
    with pytest.raises(AttributeError):
        event.content = "changed"  # type: ignore[misc]


def test_committed_log_fixtures_still_decode_and_cover_every_type(tmp_path: Path) -> None:
    seen: set[str] = set()
    for fixture in sorted(FIXTURES.glob("log-v*.sqlite")):
        copy = tmp_path / fixture.name
        shutil.copy(fixture, copy)
        with SQLiteEventStore(copy, read_only=True) as store:
            records = list(store.read())
        lines = fixture.with_suffix(".jsonl").read_bytes().splitlines()
        assert [decode_record(line) for line in lines] == records
        assert [decode_record(encode_record(r)) for r in records] == records, "re-encoding must round-trip"
        seen.update(r.type for r in records)
    assert seen == set(EVENT_TYPES), "add a new log-vN fixture covering every new event type"


def test_fixture_v1_content() -> None:
    records = [decode_record(line) for line in (FIXTURES / "log-v1.jsonl").read_bytes().splitlines()]
    by_type: dict[str, RecordedEvent] = {r.type: r for r in records}
    assistant = by_type["assistant_message"].payload
    assert isinstance(assistant, AssistantMessage)
    assert assistant.tool_calls[0].arguments == {"order_id": "#W1"}
    assert assistant.tokens is not None
    assert assistant.tokens.logprobs == [-0.5, -0.25]
    finished = by_type["episode_finished"]
    assert isinstance(finished.payload, EpisodeFinished)
    assert finished.payload.breakdown == {"db": 0.0}
    assert (finished.position, finished.stream_id, finished.version) == (7, "ep-1", 5)
    assert finished.timestamp == 1_750_000_006.0
    assert finished.correlation_id == finished.event_id


def test_fixture_v3_groups_dropped_decodes_renders_and_defaults_its_optional_fields() -> None:
    records = [decode_record(line) for line in (FIXTURES / "log-v3.jsonl").read_bytes().splitlines()]
    assert [(r.type, r.stream_id) for r in records] == [("groups_dropped", "solver")] * 2
    first, second = (r.payload for r in records)
    assert first == GroupsDropped(
        groups={"g-flat": "zero_variance", "g-old": "stale"},
        episodes={"ep-old-0": "stale", "ep-old-1": "stale"},
        step=2,
        policy_version=1,
    )
    assert isinstance(second, GroupsDropped)
    assert (second.step, second.policy_version) == (0, 0)
    line = render(records[0])
    assert "groups_dropped: dropped 2 group(s) at step 2 (policy v1): g-flat (zero_variance), g-old (stale)" in line
    assert "episodes ep-old-0 (stale), ep-old-1 (stale)" in line
    assert decode_payload(b'{"type":"groups_dropped","groups":{"g":"stale"}}') == GroupsDropped(groups={"g": "stale"})
