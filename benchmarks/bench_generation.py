"""In-process decoding options side by side: the rollout engine's throughput on the CPU.

1. Batched vs one-at-a-time: the same concurrent requests (retail-length prompts, the bootstrap model's shape,
   random weights) through `TransformersGenerator` with `max_batch=1` and `max_batch=N`.
2. Prefix-cache reuse vs full prefill: concurrent multi-turn conversations (each turn's prompt is the previous
   prompt, the tokens generated and a new tool result) with `prefix_cache=0` and `prefix_cache=16`.
Prints generated tokens/s and the ratios.

    .venv/bin/python benchmarks/bench_generation.py [--size tiny] [--requests 16] [--batch 8] [--threads 1]
"""

from __future__ import annotations

import argparse
import random
import time

import anyio


async def throughput(generator: object, prompts: list[list[int]], max_tokens: int) -> tuple[float, int]:
    from sentinel_async.agents.clients.token_client import SamplingParams, TransformersGenerator

    assert isinstance(generator, TransformersGenerator)
    produced = 0

    async def one(index: int) -> None:
        nonlocal produced
        params = SamplingParams(max_tokens=max_tokens, temperature=1.0, seed=index)
        result = await generator.generate(prompts[index], params)
        produced += len(result.token_ids)

    start = time.perf_counter()
    async with anyio.create_task_group() as group:
        for index in range(len(prompts)):
            group.start_soon(one, index)
    return produced / (time.perf_counter() - start), produced


async def conversations(
    generator: object, openings: list[list[int]], turns: int, max_tokens: int, rng: random.Random
) -> float:
    """Wall seconds to play `turns` turns of every conversation concurrently (a turn appends a tool result)."""
    from sentinel_async.agents.clients.token_client import SamplingParams, TransformersGenerator

    assert isinstance(generator, TransformersGenerator)
    results = [[rng.randrange(3, 2000) for _ in range(rng.randrange(150, 600))] for _ in range(turns * len(openings))]

    async def one(index: int) -> None:
        prompt = list(openings[index])
        for turn in range(turns):
            params = SamplingParams(max_tokens=max_tokens, temperature=1.0, seed=index * 1000 + turn)
            result = await generator.generate(prompt, params)
            prompt = prompt + result.token_ids + results[index * turns + turn]

    start = time.perf_counter()
    async with anyio.create_task_group() as group:
        for index in range(len(openings)):
            group.start_soon(one, index)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=["toy", "tiny", "small"], default="tiny")
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--min-prompt", type=int, default=600)
    parser.add_argument("--max-prompt", type=int, default=3000)
    parser.add_argument("--turns", type=int, default=8, help="turns per conversation in the prefix-cache part")
    args = parser.parse_args()

    import torch

    from sentinel_async.agents.clients.token_client import TransformersGenerator
    from sentinel_async.bootstrap.model import MODEL_SIZES, build_model

    torch.set_num_threads(args.threads)
    model = build_model(MODEL_SIZES[args.size], 2048)
    rng = random.Random(0)
    # by default, prompts like a retail episode's turns: 600 to 3,000 tokens
    lengths = [rng.randrange(args.min_prompt, args.max_prompt + 1) for _ in range(args.requests)]
    prompts = [[rng.randrange(3, 2000) for _ in range(n)] for n in lengths]
    # no stop ids: every request generates max_tokens, so both modes produce the same token count
    rates = {}
    for batch in (1, args.batch):
        generator = TransformersGenerator(model, max_batch=batch, seed=0)
        rates[batch], produced = anyio.run(throughput, generator, prompts, args.max_tokens)
        sizes = generator.batch_sizes
        mean = sum(sizes) / len(sizes) if sizes else 1.0
        print(f"max_batch={batch}: {rates[batch]:.0f} generated tok/s ({produced} tokens, mean batch {mean:.1f})")
    print(f"batched / one-at-a-time = {rates[args.batch] / rates[1]:.2f}x "
          f"({args.requests} concurrent requests, prompts {args.min_prompt}-{args.max_prompt} tokens, {args.size}, "
          f"{torch.get_num_threads()} thread(s))")  # fmt: skip

    openings = [[rng.randrange(3, 2000) for _ in range(600)] for _ in range(args.batch)]
    seconds = {}
    for capacity in (0, 16):
        generator = TransformersGenerator(model, seed=0, prefix_cache=capacity)
        seconds[capacity] = anyio.run(conversations, generator, openings, args.turns, 24, random.Random(1))
        print(f"prefix_cache={capacity}: {seconds[capacity]:.1f} s for {args.batch} conversations x {args.turns} "
              f"turns (cache hits {generator.prefix_cache.hits}, tokens not prefilled again "
              f"{generator.prefix_cache.reused_tokens:,})")  # fmt: skip
    print(
        f"prefix reuse speed-up = {seconds[0] / seconds[16]:.2f}x (turns of 24 new tokens, tool results of "
        f"150-600 tokens, conversations up to ~{600 + args.turns * 400:,} tokens)"
    )


if __name__ == "__main__":
    main()
