"""Shared fixtures for the agent-client tests: a tiny local tokenizer and Qwen3 model, instant backoff."""

from __future__ import annotations

import random
from typing import Any

import pytest

from sentinel_async.agents.clients import ClientConfig
from sentinel_async.testing.tiny_models import build_tiny_qwen3, build_tiny_tokenizer

ORDER_TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_order_details",
            "description": "Get the status and details of an order.",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}},
                "required": ["order_id"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "cancel_pending_order",
            "description": "Cancel a pending order.",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}, "reason": {"type": "string"}},
                "required": ["order_id", "reason"],
            },
        },
    },
]


class SleepRecorder:
    """An injectable `sleep` that returns at once and records the delays asked for."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleeper() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def rng() -> random.Random:
    return random.Random(7)


def config_for(base_url: str, model: str, **overrides: Any) -> ClientConfig:
    """A client config with fast test defaults."""
    values: dict[str, Any] = {"timeout_s": 5.0, "max_retries": 2, "backoff_base_s": 0.1, "backoff_cap_s": 1.0}
    values.update(overrides)
    return ClientConfig(base_url=base_url, model=model, **values)


@pytest.fixture
def order_tools() -> list[dict[str, Any]]:
    return ORDER_TOOLS


@pytest.fixture
def make_config() -> Any:
    return config_for


@pytest.fixture(scope="session")
def tokenizer() -> Any:
    return build_tiny_tokenizer()


@pytest.fixture(scope="session")
def tiny_model(tokenizer: Any) -> Any:
    return build_tiny_qwen3(len(tokenizer), eos_token_id=tokenizer.eos_token_id)
