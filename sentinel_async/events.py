"""The whole event vocabulary: frozen msgspec Structs joined in one tagged union, and the stored envelope.

Every payload is tagged with its snake_case type name in the field ``type``. A stored event is a
`RecordedEvent`: the payload plus its global position, stream id and version, event id, timestamp (from an
injected clock) and causation/correlation ids.

Schema evolution rules (also in docs/events.md); an old log must stay readable forever:

1. Never rename or remove an event type or a field; never change a field's type.
2. A new field always has a default, so records written before it decode.
3. A new event type is a new Struct added to `Event`; old readers reject it by name (CorruptEventError),
   they never misread it.
4. A meaning change is a new type (``..._v2``), never an edit of the old one.
5. tests/fixtures/log-vN.* are committed logs that together hold every type; their decode test must keep
   passing (a new type goes into a new fixture version, never into an old one).
"""

from __future__ import annotations

import re
from typing import Any, Literal

import msgspec

from sentinel_async.messages import TokenTrace, ToolCall

TaskSource = Literal["benchmark", "proposed", "general"]
Purpose = Literal["train", "eval", "guide"]
"""Why an episode ran: training rollouts feed the Controller, the pool and the Solver; evaluation episodes none of
them; guide episodes (an expert's turns as the policy's tokens, `sentinel_async.agents.guidance`) the Solver only."""

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def _snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


class EventBase(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag=_snake):
    """Base of every event payload; the tag is the class name in snake_case."""


# --- runs and tasks --------------------------------------------------------------------------------------


class RunStarted(EventBase, frozen=True, kw_only=True):
    """A run began, with the full configuration it runs under."""

    run_id: str
    config: dict[str, Any] = msgspec.field(default_factory=dict)
    code_version: str = ""


class TaskLineage(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Why a task exists: the pattern and failed episodes it was generated from."""

    pattern_id: str | None = None
    episode_ids: list[str] = msgspec.field(default_factory=list)
    parent_task_id: str | None = None
    generator: str | None = None


class TaskRegistered(EventBase, frozen=True, kw_only=True):
    """A task entered the catalogue. `spec` is the task in tau2's tasks.json layout."""

    task_id: str
    domain: str
    source: TaskSource
    split: str | None = None
    spec: dict[str, Any] = msgspec.field(default_factory=dict)
    lineage: TaskLineage | None = None


# --- episodes -----------------------------------------------------------------------------------------------


class EpisodeStarted(EventBase, frozen=True, kw_only=True):
    """An episode of a task began under a policy version and a seed."""

    episode_id: str
    task_id: str
    domain: str
    policy_version: int
    seed: int
    policy: str = ""
    user: str = ""
    group_id: str | None = None
    max_steps: int | None = None
    purpose: Purpose = "train"


class UserMessage(EventBase, frozen=True, kw_only=True):
    """The (simulated) user spoke."""

    episode_id: str
    turn: int
    content: str


class AssistantMessage(EventBase, frozen=True, kw_only=True):
    """The policy spoke or called tools. Token-level policies also record exactly what they saw and sampled."""

    episode_id: str
    turn: int
    content: str = ""
    tool_calls: list[ToolCall] = msgspec.field(default_factory=list)
    tokens: TokenTrace | None = None
    policy_version: int | None = None
    raw_text: str | None = None
    parse_error: str | None = None
    finish_reason: str | None = None


class ToolResult(EventBase, frozen=True, kw_only=True):
    """A tool call's result (or the error the runtime answered a malformed call with)."""

    episode_id: str
    turn: int
    call_id: str
    name: str
    content: str
    error: bool = False
    state_hash: str | None = None


class EpisodeFinished(EventBase, frozen=True, kw_only=True):
    """An episode ended: why, and the reward with its breakdown (e.g. {"db": 1.0, "communicate": 0.0})."""

    episode_id: str
    task_id: str
    termination: str
    reward: float
    breakdown: dict[str, float] = msgspec.field(default_factory=dict)
    turns: int = 0
    policy_version: int | None = None
    final_state_hash: str | None = None
    info: dict[str, Any] = msgspec.field(default_factory=dict)
    purpose: Purpose = "train"


class FaultRecorded(EventBase, frozen=True, kw_only=True):
    """A system fault the run survived (dead model server, decode error...), kept for the record."""

    component: str
    message: str
    episode_id: str | None = None
    detail: dict[str, Any] = msgspec.field(default_factory=dict)


# --- Controller -----------------------------------------------------------------------------------------------


class Evidence(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Where a failure shows: the episode, the turn, what was expected and what happened."""

    episode_id: str
    turn: int | None = None
    expected: str | None = None
    actual: str | None = None


class FailureDiagnosed(EventBase, frozen=True, kw_only=True):
    """The Controller classified one failed episode."""

    episode_id: str
    task_id: str
    category: str
    summary: str
    evidence: list[Evidence] = msgspec.field(default_factory=list)
    analyser: str = "deterministic"


class FailurePattern(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A recurring failure: its category, how often, since when, and links to the evidence."""

    pattern_id: str
    category: str
    description: str
    count: int
    status: Literal["new", "persistent", "resolved"] = "new"
    episode_ids: list[str] = msgspec.field(default_factory=list)
    subkey: str | None = None
    """What the category is about, where it is split: the tool (a write, or a lookup never made) or the
    protocol problem, as in `pattern_id`'s `category:subkey` (None in logs written before the field)."""


class FailurePatternsUpdated(EventBase, frozen=True, kw_only=True):
    """The Controller's current view of recurring failures."""

    patterns: list[FailurePattern]
    episodes_seen: int = 0


# --- Proposer ---------------------------------------------------------------------------------------------------


class TaskProposed(EventBase, frozen=True, kw_only=True):
    """The Proposer generated and verified a new executable task."""

    task_id: str
    domain: str
    spec: dict[str, Any]
    signature: str
    lineage: TaskLineage
    verification: dict[str, Any] = msgspec.field(default_factory=dict)


class TaskRejected(EventBase, frozen=True, kw_only=True):
    """A candidate task failed verification or deduplication."""

    candidate_id: str
    reason: str
    detail: str = ""
    pattern_id: str | None = None


# --- task pool ------------------------------------------------------------------------------------------------


class TaskAdmitted(EventBase, frozen=True, kw_only=True):
    """A task joined the training pool."""

    task_id: str
    source: TaskSource
    reason: str = ""


class TaskRetired(EventBase, frozen=True, kw_only=True):
    """A task left the training pool (solved, or too hard for too long)."""

    task_id: str
    reason: str
    pass_rate: float


class SampledTask(msgspec.Struct, frozen=True, kw_only=True):
    """One task chosen for a rollout round, with why."""

    task_id: str
    source: TaskSource
    pass_rate: float | None
    reason: str


class TasksSampled(EventBase, frozen=True, kw_only=True):
    """The pool's choice of tasks for one rollout round."""

    round: int
    tasks: list[SampledTask]


# --- Solver -----------------------------------------------------------------------------------------------------


class BatchFormed(EventBase, frozen=True, kw_only=True):
    """The trainer formed a batch: exactly these episodes, grouped as listed."""

    batch_id: str
    step: int
    episode_ids: list[str]
    groups: dict[str, list[str]] = msgspec.field(default_factory=dict)
    policy_version: int = 0
    progress_weight: float = 0.0
    """`BatchingConfig.progress_weight` when the batch was formed (its advantages depend on it)."""


class PolicyUpdated(EventBase, frozen=True, kw_only=True):
    """A training step produced a new policy version."""

    version: int
    batch_id: str
    checkpoint: str
    metrics: dict[str, float] = msgspec.field(default_factory=dict)


class GroupsDropped(EventBase, frozen=True, kw_only=True):
    """The Solver screened complete groups and dropped them instead of training on them, each with its reason.

    `groups`: group id -> reason ("zero_variance", "stale", "version_mismatch"); `episodes`: the episodes that
    made their group unusable -> reason. Committed with the Solver's cursor (alone, or with the step's
    `BatchFormed` and `PolicyUpdated`): a dropped group is consumed, never screened again.
    """

    groups: dict[str, str]
    episodes: dict[str, str] = msgspec.field(default_factory=dict)
    step: int = 0
    """The training step being planned when the groups were screened."""
    policy_version: int = 0
    """The trainer's version the groups were screened against."""


class EvaluationFinished(EventBase, frozen=True, kw_only=True):
    """An evaluation of a policy version on a split finished."""

    split: str
    policy_version: int
    trials: int
    num_tasks: int
    pass_hat_k: dict[int, float] = msgspec.field(default_factory=dict)
    episode_ids: list[str] = msgspec.field(default_factory=list)


Event = (
    RunStarted
    | TaskRegistered
    | EpisodeStarted
    | UserMessage
    | AssistantMessage
    | ToolResult
    | EpisodeFinished
    | FaultRecorded
    | FailureDiagnosed
    | FailurePatternsUpdated
    | TaskProposed
    | TaskRejected
    | TaskAdmitted
    | TaskRetired
    | TasksSampled
    | BatchFormed
    | PolicyUpdated
    | EvaluationFinished
    | GroupsDropped
)
"""Every event payload type."""

EVENT_TYPES: dict[str, type[EventBase]] = {_snake(cls.__name__): cls for cls in EventBase.__subclasses__()}


_TYPE_NAMES: dict[type[EventBase], str] = {cls: name for name, cls in EVENT_TYPES.items()}


def event_type_name(cls: type[EventBase]) -> str:
    """The tag stored for an event class."""
    return _snake(cls.__name__)


class NewEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event to append, with optional ids; missing ids are filled in by the store."""

    payload: Event
    event_id: str | None = None
    causation_id: str | None = None
    correlation_id: str | None = None


class RecordedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event as stored: payload plus position, stream, version, ids and timestamp."""

    position: int
    stream_id: str
    version: int
    event_id: str
    timestamp: float
    causation_id: str | None
    correlation_id: str
    payload: Event

    @property
    def type(self) -> str:
        """The payload's type tag."""
        return _TYPE_NAMES[type(self.payload)]


_record_encoder = msgspec.json.Encoder()
_record_decoder = msgspec.json.Decoder(RecordedEvent)
_payload_decoder = msgspec.json.Decoder(Event)


def encode_record(record: RecordedEvent) -> bytes:
    """Encode a stored event as JSON bytes."""
    return _record_encoder.encode(record)


def decode_record(data: bytes | str) -> RecordedEvent:
    """Decode JSON bytes into a RecordedEvent; raises msgspec.ValidationError / DecodeError on bad input."""
    return _record_decoder.decode(data)


def decode_payload(data: bytes | str) -> Event:
    """Decode one tagged payload."""
    payload: Event = _payload_decoder.decode(data)
    return payload
