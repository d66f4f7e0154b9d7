"""Test doubles: a fake vLLM-compatible server and tiny local tokenizers and models (no downloads)."""

from sentinel_async.testing.fake_vllm import (
    FakeChatReply,
    FakeCompletion,
    FakeToolCall,
    FakeVLLM,
    Fault,
    RecordedRequest,
)

__all__ = [
    "FakeChatReply",
    "FakeCompletion",
    "FakeToolCall",
    "FakeVLLM",
    "Fault",
    "RecordedRequest",
]
