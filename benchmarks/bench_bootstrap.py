"""Build the bootstrap policy at a given size and evaluate it on the retail test split with the scripted user.

Prints parameters, tokens per prompt, generation tokens/s, SFT time and loss, and test pass^1.

    .venv/bin/python benchmarks/bench_bootstrap.py --size tiny --minutes 5 --threads 1 --cache /tmp/bootstrap
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path
from typing import Any


async def evaluate_policy(bootstrap: Any, tasks: list[Any], *, temperature: float, concurrency: int) -> dict[str, Any]:
    from sentinel_async.agents.clients.token_client import SamplingParams
    from sentinel_async.agents.episode import EpisodeRunner
    from sentinel_async.agents.rollout import plan_trials, run_episodes
    from sentinel_async.agents.scripted import ScriptedUser, derive_user_script
    from sentinel_async.bootstrap import bootstrap_policy
    from sentinel_async.tools.retail import RetailDomain
    from sentinel_async.tools.retail.evaluation import Evaluator

    domain = RetailDomain()
    sampling = SamplingParams(max_tokens=384, temperature=temperature)
    policy = bootstrap_policy(bootstrap, sampling=sampling)
    runner = EpisodeRunner(domain=domain, evaluate=Evaluator(domain).evaluate)
    jobs = plan_trials(tasks, 1, seed=0, prefix="bench")
    start = time.monotonic()
    outcomes = await run_episodes(
        runner,
        jobs,
        make_policy=lambda task, seed: policy,
        make_user=lambda task, seed: ScriptedUser(derive_user_script(task, domain), seed=seed),
        concurrency=concurrency,
        on_done=lambda o: print(f"  task {o.task_id}: {o.termination}, reward {o.reward.reward if o.reward else 0}"),
    )
    rewards = [o.reward.reward if o.reward else 0.0 for o in outcomes]
    return {
        "pass1": sum(rewards) / len(rewards),
        "seconds": time.monotonic() - start,
        "mean_steps": statistics.fmean(o.steps for o in outcomes),
        "terminations": {t: sum(o.termination == t for o in outcomes) for t in {o.termination for o in outcomes}},
    }


def generation_speed(bootstrap: Any, prompt_ids: list[int], new_tokens: int = 128) -> float:
    """Greedy decoding tokens/s from a real prompt (no stop token)."""
    import torch

    model = bootstrap.model
    with torch.inference_mode():
        start = time.monotonic()
        out = model(input_ids=torch.tensor([prompt_ids]), use_cache=True)
        for _ in range(new_tokens):
            token = int(out.logits[0, -1].argmax())
            out = model(input_ids=torch.tensor([[token]]), cache=out.cache, use_cache=True)
        return new_tokens / (time.monotonic() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=["toy", "tiny", "small"], default="tiny")
    parser.add_argument("--minutes", type=float, default=None)
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tasks", type=int, default=None, help="only the first N test tasks")
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch-tokens", type=int, default=None, help="override the SFT token budget per step")
    parser.add_argument("--general-tasks", type=int, default=None, help="override the general-task demonstrations")
    parser.add_argument("--episodes-per-task", type=int, default=None, help="override demonstrations per task")
    parser.add_argument("--lr", type=float, default=None, help="override the SFT learning rate")
    parser.add_argument("--general-episodes", type=int, default=None, help="override episodes per general task")
    parser.add_argument("--context-weight", type=float, default=None, help="override the SFT context loss weight")
    parser.add_argument("--turn-windows", action="store_true", help="also train on per-turn windows")
    args = parser.parse_args()

    import msgspec
    import torch

    torch.set_num_threads(args.threads)
    from sentinel_async.agents.clients.token_client import to_template_messages
    from sentinel_async.agents.episode import GREETING
    from sentinel_async.bootstrap import bootstrap_config, load_or_build
    from sentinel_async.cli.bootstrap_command import format_manifest
    from sentinel_async.messages import ChatMessage
    from sentinel_async.tools.retail import RetailDomain

    config = bootstrap_config(args.size, minutes=args.minutes)
    if args.batch_tokens is not None:
        config = msgspec.structs.replace(
            config, sft=msgspec.structs.replace(config.sft, batch_tokens=args.batch_tokens)
        )
    demos = config.demos
    if args.general_tasks is not None:
        demos = msgspec.structs.replace(demos, general_tasks=args.general_tasks)
    if args.episodes_per_task is not None:
        demos = msgspec.structs.replace(demos, episodes_per_task=args.episodes_per_task)
    if args.general_episodes is not None:
        demos = msgspec.structs.replace(demos, episodes_per_general_task=args.general_episodes)
    if args.turn_windows:
        demos = msgspec.structs.replace(demos, turn_windows=True)
    config = msgspec.structs.replace(config, demos=demos)
    if args.lr is not None:
        config = msgspec.structs.replace(config, sft=msgspec.structs.replace(config.sft, lr=args.lr))
    if args.context_weight is not None:
        sft = msgspec.structs.replace(config.sft, context_loss_weight=args.context_weight)
        config = msgspec.structs.replace(config, sft=sft)
    bootstrap = load_or_build(config, cache_dir=args.cache, force=args.force)
    print(format_manifest(bootstrap.manifest, bootstrap.path))
    domain = RetailDomain()
    tasks = domain.tasks("test")[: args.tasks]
    first = [
        ChatMessage(role="system", content=domain.policy()),
        ChatMessage(role="assistant", content=GREETING),
        ChatMessage(role="user", content="Hi! I want to return an item from my order #W2378156, please."),
    ]
    prompt = bootstrap.tokenizer.apply_chat_template(
        to_template_messages(first), tools=domain.tool_schemas(), add_generation_prompt=True, return_dict=False
    )
    print(f"first-turn prompt: {len(prompt)} tokens; generation {generation_speed(bootstrap, list(prompt)):.0f} tok/s")
    result = asyncio.run(evaluate_policy(bootstrap, tasks, temperature=args.temperature, concurrency=args.concurrency))
    print(
        f"test pass^1 = {result['pass1']:.3f} over {len(tasks)} tasks in {result['seconds']:.0f} s "
        f"(mean steps {result['mean_steps']:.1f}, terminations {result['terminations']})"
    )


if __name__ == "__main__":
    main()
