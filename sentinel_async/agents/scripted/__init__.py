"""Scripted retail agents: a deterministic customer, an expert demonstrator and faulty experts (no LLM)."""

from sentinel_async.agents.scripted.expert import ScriptedExpert
from sentinel_async.agents.scripted.faulty import (
    FAULTY_EXPERTS,
    FaultyExpert,
    MalformedCallExpert,
    NoConfirmationExpert,
    PrematureStopExpert,
    SkipsWriteExpert,
    WrongItemExpert,
)
from sentinel_async.agents.scripted.user import ScriptedUser, proposal_matches
from sentinel_async.agents.scripted.user_script import (
    Address,
    Identity,
    Intent,
    Item,
    PaymentMethod,
    ScriptCache,
    UserScript,
    derive_user_script,
)

__all__ = [
    "FAULTY_EXPERTS",
    "Address",
    "FaultyExpert",
    "Identity",
    "Intent",
    "Item",
    "MalformedCallExpert",
    "NoConfirmationExpert",
    "PaymentMethod",
    "PrematureStopExpert",
    "ScriptCache",
    "ScriptedExpert",
    "ScriptedUser",
    "SkipsWriteExpert",
    "UserScript",
    "WrongItemExpert",
    "derive_user_script",
    "proposal_matches",
]
