"""Model clients: OpenAI-compatible chat (agent and LLM user), Qwen tool-call parsing, token-level policies.

Nothing here imports torch or transformers at import time.
"""

from sentinel_async.agents.clients._http import ClientConfig, HttpTransport
from sentinel_async.agents.clients.errors import (
    MalformedResponseError,
    ModelServerError,
    ModelServerRequestError,
    ModelServerTimeoutError,
    ModelServerUnavailableError,
)
from sentinel_async.agents.clients.openai_chat import (
    STOP_TOKENS,
    ChatClient,
    ChatPolicy,
    ChatUser,
    is_stop_message,
    load_user_guidelines,
)
from sentinel_async.agents.clients.qwen_format import ParsedOutput, parse_qwen_output
from sentinel_async.agents.clients.token_client import (
    GenerationResult,
    SamplingParams,
    TokenGenerator,
    TokenPolicy,
    TokenScorer,
    TransformersGenerator,
    VLLMCompletionsGenerator,
)

__all__ = [
    "STOP_TOKENS",
    "ChatClient",
    "ChatPolicy",
    "ChatUser",
    "ClientConfig",
    "GenerationResult",
    "HttpTransport",
    "MalformedResponseError",
    "ModelServerError",
    "ModelServerRequestError",
    "ModelServerTimeoutError",
    "ModelServerUnavailableError",
    "ParsedOutput",
    "SamplingParams",
    "TokenGenerator",
    "TokenPolicy",
    "TokenScorer",
    "TransformersGenerator",
    "VLLMCompletionsGenerator",
    "is_stop_message",
    "load_user_guidelines",
    "parse_qwen_output",
]
