"""Token-in/token-out policy for training: render the chat template locally, generate ids, keep the log-probs.

`TokenPolicy` renders the prompt with a transformers tokenizer and hands the ids to a `TokenGenerator`:
`VLLMCompletionsGenerator` (a vLLM server's `/v1/completions` with a token-id prompt) or
`TransformersGenerator` (an in-process causal LM). torch and transformers are imported lazily.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, Protocol, Self, runtime_checkable

import aiohttp
import anyio
import msgspec

from sentinel_async.agents.clients._http import ClientConfig, HttpTransport, SleepFn
from sentinel_async.agents.clients.errors import MalformedResponseError
from sentinel_async.agents.clients.prefix_cache import PrefixCache
from sentinel_async.agents.clients.qwen_format import new_call_id, parse_qwen_output
from sentinel_async.agents.clients.wire import CompletionChoice, CompletionResponse, ModelList
from sentinel_async.agents.protocols import PolicyTurn
from sentinel_async.messages import ChatMessage, TokenTrace
from sentinel_async.prompt_view import PromptView

_TOKEN_ID = re.compile(r"token_id:(\d+)")
DEFAULT_STOP_TOKENS = ("<|im_end|>", "<|endoftext|>")


class SamplingParams(msgspec.Struct, frozen=True, kw_only=True):
    """Sampling settings for one generation. `temperature` 0 means greedy."""

    max_tokens: int = 512
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop_token_ids: tuple[int, ...] = ()


class GenerationResult(msgspec.Struct, frozen=True, kw_only=True):
    """Sampled ids (a stop token included when generation stopped on it) and one log-prob per id."""

    token_ids: list[int]
    logprobs: list[float]
    finish_reason: str
    text: str | None = None
    weights_version: int | None = None


class TokenGenerator(Protocol):
    """Generates continuation ids for a token-id prompt."""

    async def generate(self, prompt_ids: Sequence[int], params: SamplingParams) -> GenerationResult:
        """Sample a continuation of `prompt_ids`."""
        ...


@runtime_checkable
class TokenScorer(Protocol):
    """Scores given continuation ids under the model (what a guided turn records as its log-probs)."""

    async def score(self, prompt_ids: Sequence[int], ids: Sequence[int], temperature: float) -> list[float]:
        """log p(ids[i] | prompt_ids + ids[:i]) at `temperature`, one per id."""
        ...


@runtime_checkable
class WeightUpdatable(Protocol):
    """A generator whose weights can be replaced in place."""

    async def update_weights(self, state_dict: Mapping[str, Any], version: int) -> None:
        """Load `state_dict` and record `version` as the weights now served."""
        ...


def parse_completion_choice(choice: CompletionChoice, prompt_ids: Sequence[int], url: str) -> GenerationResult:
    """Recover ids and log-probs from a vLLM completion choice, cross-checking every source of ids."""
    lp = choice.logprobs
    if lp is None:
        raise MalformedResponseError(url, "the choice has no `logprobs` (was logprobs=1 ignored?)")
    from_tokens: list[int] | None = []
    for token in lp.tokens:
        m = _TOKEN_ID.fullmatch(token)
        if m is None:
            from_tokens = None
            break
        assert from_tokens is not None
        from_tokens.append(int(m.group(1)))
    ids = choice.token_ids if choice.token_ids is not None else from_tokens
    if ids is None:
        raise MalformedResponseError(
            url, "no generated token ids: neither `token_ids` nor `token_id:<id>` strings in `logprobs.tokens`"
        )
    if choice.token_ids is not None and from_tokens is not None and from_tokens != choice.token_ids:
        raise MalformedResponseError(url, "`token_ids` and `logprobs.tokens` disagree")
    if len(lp.token_logprobs) != len(ids):
        raise MalformedResponseError(
            url, f"{len(ids)} token ids but {len(lp.token_logprobs)} entries in `logprobs.token_logprobs`"
        )
    logprobs: list[float] = []
    for i, value in enumerate(lp.token_logprobs):
        if value is None:
            raise MalformedResponseError(url, f"`logprobs.token_logprobs[{i}]` is null")
        logprobs.append(float(value))
    if choice.prompt_token_ids is not None and list(choice.prompt_token_ids) != list(prompt_ids):
        raise MalformedResponseError(url, "the server's `prompt_token_ids` differ from the prompt ids sent")
    return GenerationResult(
        token_ids=list(ids), logprobs=logprobs, finish_reason=choice.finish_reason or "unknown", text=choice.text
    )


class VLLMCompletionsGenerator:
    """Generation through a vLLM server's `POST /v1/completions` with a token-id prompt.

    Requests `logprobs=1`, `return_tokens_as_token_ids` and `return_token_ids` (vLLM >= 0.10.2; older servers
    still give `token_id:<id>` strings). Log-probs are whatever the server computes: vLLM's default
    `--logprobs-mode raw_logprobs` gives them *before* temperature/top-p; start it with
    `--logprobs-mode processed_logprobs` to get the sampling distribution actually used.
    `use_model` switches to a LoRA adapter (and the version stamped on results) after `load_lora_adapter`.
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        session: aiohttp.ClientSession | None = None,
        rng: random.Random | None = None,
        sleep: SleepFn | None = None,
    ) -> None:
        self.config = config
        self.transport = HttpTransport(config, session=session, rng=rng, sleep=sleep)
        self.model = config.model
        self.weights_version: int | None = None

    def use_model(self, name: str, version: int | None = None) -> None:
        """Send later requests to model (or adapter) `name`, stamping results with `version`."""
        self.model = name
        self.weights_version = version

    async def generate(self, prompt_ids: Sequence[int], params: SamplingParams) -> GenerationResult:
        """Sample a continuation of `prompt_ids` on the server."""
        model, version = self.model, self.weights_version
        payload: dict[str, Any] = {
            "model": model,
            "prompt": list(prompt_ids),
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "logprobs": 1,
            "return_tokens_as_token_ids": True,
            "return_token_ids": True,
            "skip_special_tokens": False,
        }
        if params.seed is not None:
            payload["seed"] = params.seed
        if params.stop_token_ids:
            payload["stop_token_ids"] = list(params.stop_token_ids)
        response = await self.transport.post("/completions", payload, CompletionResponse)
        url = self.transport.url("/completions")
        if not response.choices:
            raise MalformedResponseError(url, "`choices` is empty")
        result = parse_completion_choice(response.choices[0], prompt_ids, url)
        return msgspec.structs.replace(result, weights_version=version)

    async def score(self, prompt_ids: Sequence[int], ids: Sequence[int], temperature: float) -> list[float]:
        """The served model's log-probs of `ids` after `prompt_ids`: one request for the whole sequence with
        `prompt_logprobs=0` and one generated token. vLLM computes prompt log-probs from the raw logits, so
        `temperature` is not applied (as with `--logprobs-mode raw_logprobs`, vLLM's default)."""
        del temperature
        if not prompt_ids or not ids:
            raise ValueError("scoring needs a non-empty prompt and continuation")
        payload: dict[str, Any] = {
            "model": self.model,
            "prompt": [*prompt_ids, *ids],
            "max_tokens": 1,
            "temperature": 0.0,
            "prompt_logprobs": 0,
            "skip_special_tokens": False,
        }
        response = await self.transport.post("/completions", payload, CompletionResponse)
        url = self.transport.url("/completions")
        if not response.choices or response.choices[0].prompt_logprobs is None:
            raise MalformedResponseError(url, "no `prompt_logprobs` in the completion (is the server vLLM?)")
        positions = response.choices[0].prompt_logprobs[len(prompt_ids) :]
        if len(positions) != len(ids):
            raise MalformedResponseError(url, f"{len(positions)} prompt log-probs for {len(ids)} scored ids")
        out: list[float] = []
        for token, entries in zip(ids, positions, strict=True):
            entry = (entries or {}).get(str(token))
            if entry is None:
                raise MalformedResponseError(url, f"prompt log-probs lack the prompt's own token {token}")
            out.append(entry.logprob)
        return out

    async def list_models(self) -> ModelList:
        """`GET /v1/models`: the base model and loaded LoRA adapters."""
        return await self.transport.get("/models", ModelList)

    async def load_lora_adapter(self, name: str, path: str, *, load_inplace: bool = False) -> str:
        """`POST /v1/load_lora_adapter` (server started with runtime LoRA updating); returns its message."""
        payload: dict[str, Any] = {"lora_name": name, "lora_path": path}
        if load_inplace:
            payload["load_inplace"] = True
        body = await self.transport.request("POST", "/load_lora_adapter", payload)
        return body.decode("utf-8", errors="replace")

    async def unload_lora_adapter(self, name: str) -> str:
        """`POST /v1/unload_lora_adapter`; returns the server's message."""
        body = await self.transport.request("POST", "/unload_lora_adapter", {"lora_name": name})
        return body.decode("utf-8", errors="replace")

    async def aclose(self) -> None:
        """Close the HTTP session (if this generator created it)."""
        await self.transport.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class TransformersGenerator:
    """In-process sampling from a transformers causal LM with a KV cache, off the event loop.

    `logprobs_mode="processed"` (default) returns log-probs under the distribution actually sampled from:
    logits / temperature, restricted to the top-p nucleus and renormalised. `"raw"` returns the untempered
    model log-probs (vLLM's default). Greedy (temperature 0) always returns raw log-probs. A request without
    a seed draws one from a generator seeded with `seed`, so runs are reproducible. Calls are serialised.
    `num_threads` sets `torch.set_num_threads` (process-wide).

    With `max_batch > 1`, requests that wait while a generation runs are decoded together as one left-padded
    batch (up to `max_batch` rows, each with its own seed, sampling settings and stop ids): a small model's
    decoding step costs about the same for 1 or 8 rows, so concurrent episodes share it. Batching changes
    floating-point sums slightly, so batched and single results may differ in rare near-ties.
    """

    def __init__(
        self,
        model: Any,
        *,
        logprobs_mode: Literal["processed", "raw"] = "processed",
        num_threads: int | None = None,
        seed: int = 0,
        weights_version: int = 0,
        max_batch: int = 1,
        pad_token_id: int = 0,
        prefix_cache: int = 0,
    ) -> None:
        import torch

        if num_threads is not None:
            torch.set_num_threads(num_threads)
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.model = model
        self.logprobs_mode = logprobs_mode
        self.weights_version = weights_version
        self.max_batch = max_batch
        self.pad_token_id = pad_token_id
        self.batch_sizes: list[int] = []
        """The size of every batch decoded so far (batched mode): how much concurrency was shared."""
        self.prefix_cache = PrefixCache(prefix_cache)
        """KV caches of the last `prefix_cache` one-at-a-time generations: a prompt that extends one of them
        prefills only its new tokens (see `sentinel_async.agents.clients.prefix_cache`)."""
        self._rng = random.Random(seed)
        self._lock = anyio.Lock()
        self._waiting: list[_Request] = []

    async def generate(self, prompt_ids: Sequence[int], params: SamplingParams) -> GenerationResult:
        """Sample a continuation of `prompt_ids` in a worker thread."""
        seed = params.seed if params.seed is not None else self._rng.randrange(2**63)
        if self.max_batch > 1:
            return await self._generate_batched(_Request(list(prompt_ids), params, seed))
        async with self._lock:
            version = self.weights_version
            ids, logprobs, finish = await anyio.to_thread.run_sync(self._generate, list(prompt_ids), params, seed)
        return GenerationResult(token_ids=ids, logprobs=logprobs, finish_reason=finish, weights_version=version)

    async def _generate_batched(self, request: _Request) -> GenerationResult:
        # Whoever holds the lock decodes everything waiting (up to max_batch, oldest first); a request that
        # another holder already served finds its result when it gets the lock.
        self._waiting.append(request)
        async with self._lock:
            if request.result is None and request.error is None:
                batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
                version = self.weights_version
                self.batch_sizes.append(len(batch))
                try:
                    outputs = await anyio.to_thread.run_sync(self._generate_batch, batch)
                except Exception as exc:  # every request of the failed batch sees the error
                    for member in batch:
                        member.error = exc
                else:
                    for member, (ids, logprobs, finish) in zip(batch, outputs, strict=True):
                        member.result = GenerationResult(
                            token_ids=ids, logprobs=logprobs, finish_reason=finish, weights_version=version
                        )
        if request.error is not None:
            raise request.error
        assert request.result is not None
        return request.result

    async def score(self, prompt_ids: Sequence[int], ids: Sequence[int], temperature: float) -> list[float]:
        """The model's log-probs of `ids` after `prompt_ids`, under logits / `temperature` (the distribution
        `processed` log-probs describe with top_p 1; temperature 0 or below gives raw log-probs)."""
        async with self._lock:
            return await anyio.to_thread.run_sync(self._score, list(prompt_ids), list(ids), temperature)

    def _score(self, prompt_ids: list[int], continuation_ids: list[int], temperature: float) -> list[float]:
        import torch

        if not prompt_ids or not continuation_ids:
            raise ValueError("scoring needs a non-empty prompt and continuation")
        device = next(self.model.parameters()).device
        ids = torch.tensor([prompt_ids + continuation_ids], device=device)
        with torch.inference_mode():
            logits = self.model(input_ids=ids).logits[0, len(prompt_ids) - 1 : -1].float()
        if temperature > 0:
            logits = logits / temperature
        picked = torch.log_softmax(logits, dim=-1).gather(-1, torch.tensor(continuation_ids, device=device)[:, None])
        return [float(x) for x in picked[:, 0]]

    async def update_weights(self, state_dict: Mapping[str, Any], version: int) -> None:
        """Load new weights (`load_state_dict`, strict) once in-flight generation finishes."""
        async with self._lock:
            await anyio.to_thread.run_sync(self.model.load_state_dict, state_dict)
            self.prefix_cache.clear()  # computed with the old weights
            self.weights_version = version

    def _generate(self, prompt_ids: list[int], params: SamplingParams, seed: int) -> tuple[list[int], list[float], str]:
        import torch

        device = next(self.model.parameters()).device
        gen = torch.Generator(device=device).manual_seed(seed)
        stop = set(params.stop_token_ids)
        ids: list[int] = []
        logprobs: list[float] = []
        finish = "length"
        with torch.inference_mode():
            reused = self.prefix_cache.take(prompt_ids)
            if reused is None:
                out = self.model(input_ids=torch.tensor([prompt_ids], device=device), use_cache=True)
            else:
                covered, cache = reused
                rest = torch.tensor([prompt_ids[covered:]], device=device)
                out = self.model(input_ids=rest, cache=cache, use_cache=True)
            for _ in range(params.max_tokens):
                token, logprob = self._sample(out.logits[0, -1].float(), params, gen)
                ids.append(token)
                logprobs.append(logprob)
                if token in stop:
                    finish = "stop"
                    break
                step = torch.tensor([[token]], device=device)
                out = self.model(input_ids=step, cache=out.cache, use_cache=True)
        fed = prompt_ids + (ids[:-1] if finish == "stop" else ids)  # a stop token is sampled, never fed
        if _cache_length(out.cache) == len(fed):
            self.prefix_cache.put(fed, out.cache)
        return ids, logprobs, finish

    def _generate_batch(self, batch: list[_Request]) -> list[tuple[list[int], list[float], str]]:
        """Decode `batch` together: left-padded prefill, then one step per token for every unfinished row."""
        import torch

        if len(batch) == 1:
            only = batch[0]
            return [self._generate(only.prompt_ids, only.params, only.seed)]
        device = next(self.model.parameters()).device
        width = max(len(r.prompt_ids) for r in batch)
        ids = torch.full((len(batch), width), self.pad_token_id, dtype=torch.long, device=device)
        attention = torch.zeros((len(batch), width), dtype=torch.long, device=device)
        for row, request in enumerate(batch):
            n = len(request.prompt_ids)
            ids[row, width - n :] = torch.tensor(request.prompt_ids, device=device)
            attention[row, width - n :] = 1
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        gens = [torch.Generator(device=device).manual_seed(r.seed) for r in batch]
        outputs: list[tuple[list[int], list[float], str]] = [([], [], "length") for _ in batch]
        done = [r.params.max_tokens <= 0 for r in batch]
        with torch.inference_mode():
            out = self.model(input_ids=ids, attention_mask=attention, position_ids=positions, use_cache=True)
            last = positions[:, -1:]
            while not all(done):
                step = torch.full((len(batch), 1), self.pad_token_id, dtype=torch.long, device=device)
                for row, request in enumerate(batch):
                    if done[row]:
                        continue
                    token, logprob = self._sample(out.logits[row, -1].float(), request.params, gens[row])
                    tokens, logprobs, _ = outputs[row]
                    tokens.append(token)
                    logprobs.append(logprob)
                    if token in request.params.stop_token_ids:
                        outputs[row], done[row] = (tokens, logprobs, "stop"), True
                    elif len(tokens) >= request.params.max_tokens:
                        done[row] = True
                    step[row, 0] = token
                if all(done):
                    break
                attention = torch.cat([attention, torch.ones((len(batch), 1), dtype=torch.long, device=device)], 1)
                last = last + 1
                out = self.model(
                    input_ids=step, attention_mask=attention, position_ids=last, cache=out.cache, use_cache=True
                )
        return outputs

    def _sample(self, logits: Any, params: SamplingParams, gen: Any) -> tuple[int, float]:
        import torch

        raw = torch.log_softmax(logits, dim=-1)
        if params.temperature <= 0:
            token = int(torch.argmax(logits))
            return token, float(raw[token])
        logp = torch.log_softmax(logits / params.temperature, dim=-1)
        if params.top_p < 1.0:
            sorted_lp, order = torch.sort(logp, descending=True)
            probs = sorted_lp.exp()
            outside = (probs.cumsum(-1) - probs) >= params.top_p
            mask = torch.zeros_like(outside).scatter(0, order, outside)
            logp = torch.log_softmax(logp.masked_fill(mask, float("-inf")), dim=-1)
        token = int(torch.multinomial(logp.exp(), 1, generator=gen))
        return token, float(logp[token] if self.logprobs_mode == "processed" else raw[token])


def _cache_length(cache: Any) -> int:
    """How many tokens a KV cache holds (-1 when it cannot tell)."""
    length = getattr(cache, "get_seq_length", None)
    return int(length()) if callable(length) else -1


class _Request:
    """One waiting generation of a batched `TransformersGenerator`."""

    __slots__ = ("error", "params", "prompt_ids", "result", "seed")

    def __init__(self, prompt_ids: list[int], params: SamplingParams, seed: int) -> None:
        self.prompt_ids = prompt_ids
        self.params = params
        self.seed = seed
        self.result: GenerationResult | None = None
        self.error: Exception | None = None


def to_template_messages(conversation: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """Our messages in the layout HF chat templates expect (tool-call arguments as objects)."""
    out: list[dict[str, Any]] = []
    for m in conversation:
        msg: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.tool_calls:
            msg["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in m.tool_calls
            ]
        if m.role == "tool":
            msg["tool_call_id"] = m.tool_call_id
            if m.name:
                msg["name"] = m.name
        out.append(msg)
    return out


class TokenPolicy:
    """The agent as a token-level policy (`Policy`): every turn carries its exact prompt and sampled ids.

    `policy_version` is stamped on each turn unless the generator reports the version it actually used;
    `view` (see `PromptView`) chooses what of the conversation a prompt shows; the conversation is unchanged.
    """

    def __init__(
        self,
        tokenizer: Any,
        generator: TokenGenerator,
        *,
        sampling: SamplingParams | None = None,
        validate_tools: bool = True,
        policy_version: int = 0,
        chat_template_kwargs: dict[str, Any] | None = None,
        view: PromptView | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.view = view or PromptView()
        self.generator = generator
        self.validate_tools = validate_tools
        self.policy_version = policy_version
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        sampling = sampling if sampling is not None else SamplingParams()
        if not sampling.stop_token_ids:
            sampling = msgspec.structs.replace(sampling, stop_token_ids=self._default_stop_ids())
        self.sampling = sampling

    def _default_stop_ids(self) -> tuple[int, ...]:
        ids: list[int] = []
        eos = getattr(self.tokenizer, "eos_token_id", None)
        if isinstance(eos, int):
            ids.append(eos)
        vocab = self.tokenizer.get_vocab()
        ids.extend(vocab[t] for t in DEFAULT_STOP_TOKENS if t in vocab)
        return tuple(dict.fromkeys(ids))

    def render_prompt(self, conversation: Sequence[ChatMessage], tools: list[dict[str, Any]]) -> list[int]:
        """The prompt ids: the chat template over `conversation` and `tools`, with the generation prompt."""
        return self._render(self.view.messages(conversation), tools, generation_prompt=True)

    def _render(
        self, messages: Sequence[ChatMessage], tools: list[dict[str, Any]], *, generation_prompt: bool
    ) -> list[int]:
        """The chat template's ids over `messages` (already through the view) and the view's `tools`."""
        rendered = self.tokenizer.apply_chat_template(
            to_template_messages(messages),
            tools=self.view.tools(tools) or None,
            add_generation_prompt=generation_prompt,
            tokenize=True,
            return_dict=False,
            **self.chat_template_kwargs,
        )
        if isinstance(rendered, Mapping):
            rendered = rendered["input_ids"]
        return [int(i) for i in rendered]

    async def act(self, conversation: Sequence[ChatMessage], tools: list[dict[str, Any]]) -> PolicyTurn:
        """Render, generate, decode and parse one assistant turn."""
        version = self.policy_version
        prompt_ids = self.render_prompt(conversation, tools)
        result = await self.generator.generate(prompt_ids, self.sampling)
        body = result.token_ids
        if body and body[-1] in self.sampling.stop_token_ids:
            body = body[:-1]
        text = self.tokenizer.decode(body, skip_special_tokens=False)
        parsed = parse_qwen_output(text, tools=tools if self.validate_tools else None, id_factory=new_call_id)
        return PolicyTurn(
            message=ChatMessage(role="assistant", content=parsed.content, tool_calls=parsed.tool_calls),
            tokens=TokenTrace(prompt_ids=prompt_ids, sampled_ids=list(result.token_ids), logprobs=result.logprobs),
            policy_version=result.weights_version if result.weights_version is not None else version,
            raw_text=text,
            parse_error=parsed.parse_error,
            finish_reason=result.finish_reason,
        )

    def turn_ids(
        self, conversation: Sequence[ChatMessage], tools: list[dict[str, Any]], message: ChatMessage
    ) -> tuple[list[int], list[int]]:
        """(prompt ids, turn ids): `message` as the chat template writes it after `conversation`, ending with the
        first stop id, i.e. the ids this policy would have to sample to say it."""
        prompt_ids = self.render_prompt(conversation, tools)
        full = self._render([*self.view.messages(conversation), message], tools, generation_prompt=False)
        if full[: len(prompt_ids)] != prompt_ids:
            raise ValueError("the chat template does not write an assistant turn as a continuation of the prompt")
        body = full[len(prompt_ids) :]
        stop = next((i for i, token in enumerate(body) if token in self.sampling.stop_token_ids), None)
        if stop is None:
            raise ValueError("the chat template ends an assistant turn with none of the policy's stop ids")
        return prompt_ids, body[: stop + 1]

    async def forced_turn(
        self,
        conversation: Sequence[ChatMessage],
        tools: list[dict[str, Any]],
        message: ChatMessage,
        *,
        rewrite: Callable[[list[int]], list[int]] | None = None,
    ) -> PolicyTurn:
        """`message` as a turn of this policy: its ids (`turn_ids`) and the policy's own log-probs of them at its
        sampling temperature, as if it had sampled them. Needs a generator that can score (`TokenScorer`).

        `rewrite` maps the prompt and turn ids together to ids of the same length before they are scored and
        recorded (renaming entities, say); the message stays as it was said."""
        if not isinstance(self.generator, TokenScorer):
            raise TypeError(f"{type(self.generator).__name__} cannot score given tokens (no `score` method)")
        version = self.policy_version
        prompt_ids, ids = self.turn_ids(conversation, tools, message)
        if rewrite is not None:
            whole = rewrite([*prompt_ids, *ids])
            if len(whole) != len(prompt_ids) + len(ids):
                raise ValueError("a turn's rewrite must keep its length")
            prompt_ids, ids = whole[: len(prompt_ids)], whole[len(prompt_ids) :]
        logprobs = await self.generator.score(prompt_ids, ids, self.sampling.temperature)
        return PolicyTurn(
            message=message,
            tokens=TokenTrace(prompt_ids=prompt_ids, sampled_ids=ids, logprobs=logprobs),
            policy_version=version,
            raw_text=self.tokenizer.decode(ids[:-1], skip_special_tokens=False),
            finish_reason="stop",
        )

    async def update_weights(self, state_dict: Mapping[str, Any], version: int | None = None) -> int:
        """Swap new weights into an in-process generator and bump (or set) `policy_version`."""
        if not isinstance(self.generator, WeightUpdatable):
            raise TypeError(f"{type(self.generator).__name__} cannot take weights in place")
        new_version = version if version is not None else self.policy_version + 1
        await self.generator.update_weights(state_dict, new_version)
        self.policy_version = new_version
        return new_version
