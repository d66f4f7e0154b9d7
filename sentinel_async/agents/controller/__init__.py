"""The Controller: diagnoses failed episodes as they land and tracks recurring failure patterns."""

from sentinel_async.agents.controller.analyser import (
    DeterministicAnalyser,
    Diagnosis,
    DomainRules,
    FailureAnalyser,
    subkey_of,
)
from sentinel_async.agents.controller.categories import FailureCategory
from sentinel_async.agents.controller.llm_analyser import LLMAnalyser, LLMVerdict, parse_verdict
from sentinel_async.agents.controller.patterns import PatternTracker, pattern_id, pattern_of
from sentinel_async.agents.controller.service import Controller, ControllerConfig, ControllerStats

__all__ = [
    "Controller",
    "ControllerConfig",
    "ControllerStats",
    "DeterministicAnalyser",
    "Diagnosis",
    "DomainRules",
    "FailureAnalyser",
    "FailureCategory",
    "LLMAnalyser",
    "LLMVerdict",
    "PatternTracker",
    "parse_verdict",
    "pattern_id",
    "pattern_of",
    "subkey_of",
]
