"""`sentinel eval`: run a policy on a domain's split with a simulated user, print pass^k, log everything."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import sys
from collections import Counter
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import msgspec

from sentinel_async.agents.episode import EpisodeOutcome
from sentinel_async.agents.evaluation import EvalConfig, EvalResult, evaluate
from sentinel_async.agents.rollout import PolicyFactory, UserFactory
from sentinel_async.bootstrap.config import NAMED
from sentinel_async.errors import SentinelError
from sentinel_async.metrics import format_pass_k_table
from sentinel_async.store import SQLiteEventStore
from sentinel_async.tools.base import Domain, TaskSpec
from sentinel_async.tools.registry import DOMAINS, get_domain


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "eval",
        help="evaluate a policy on a domain split (pass^k), recording every episode",
        description="Evaluate a policy with a simulated user; defaults: the scripted expert on the retail test split.",
    )
    parser.add_argument("--domain", choices=DOMAINS, default="retail")
    parser.add_argument("--split", choices=["train", "test", "base"], default="test")
    parser.add_argument("--task", action="append", default=[], dest="task_ids", help="only this task id (repeatable)")
    parser.add_argument("--trials", type=int, default=1, help="episodes per task (pass^k needs k trials)")
    parser.add_argument("--concurrency", type=int, default=8, help="episodes run at once")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=100)
    parser.add_argument(
        "--policy",
        choices=["expert", "endpoint", "bootstrap"],
        default="expert",
        help="expert: the scripted gold-action demonstrator; endpoint: an OpenAI-compatible model server; "
        "bootstrap: the local CPU policy (built and cached on first use), or a run's checkpoint of it",
    )
    parser.add_argument("--size", choices=list(NAMED), default="tiny", help="bootstrap size")
    parser.add_argument(
        "--build-seed", type=int, default=None, help="bootstrap policy: the build of `sentinel bootstrap --seed`"
    )
    parser.add_argument(
        "--build-steps", type=int, default=None, help="bootstrap policy: the build of `sentinel bootstrap --steps`"
    )
    parser.add_argument(
        "--build-minutes",
        type=float,
        default=None,
        help="bootstrap policy: the build of `sentinel bootstrap --minutes`",
    )
    parser.add_argument("--checkpoint", help="bootstrap policy: a run checkpoint folder (runs/.../checkpoints/vN)")
    parser.add_argument("--threads", type=int, default=None, help="bootstrap policy: torch threads")
    parser.add_argument("--model-url", help="base URL of the policy's server, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--model", help="model name on that server")
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--user", choices=["scripted", "llm"], default="scripted")
    parser.add_argument("--user-model-url", help="base URL of the LLM user's server (defaults to --model-url)")
    parser.add_argument("--user-model", help="model name of the LLM user (defaults to --model)")
    parser.add_argument(
        "--run-dir", type=Path, default=None, help="folder for events.sqlite (default: runs/eval-<time>)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=cmd_eval)


def config_from_args(args: argparse.Namespace, run_id: str) -> EvalConfig:
    config = EvalConfig(
        domain=args.domain,
        split=args.split,
        trials=args.trials,
        concurrency=args.concurrency,
        seed=args.seed,
        max_steps=args.max_steps,
        task_ids=args.task_ids,
        policy=args.policy,
        model_url=args.model_url,
        model=args.model,
        user=args.user,
        user_model_url=args.user_model_url or args.model_url,
        user_model=args.user_model or args.model,
        temperature=args.temperature,
        run_id=run_id,
        size=args.size,
        build_seed=args.build_seed,
        build_steps=args.build_steps,
        build_minutes=args.build_minutes,
        checkpoint=args.checkpoint,
    )
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    if config.trials < 1 or config.concurrency < 1:
        raise SentinelError("--trials and --concurrency must be at least 1")
    if config.policy == "endpoint" and not (config.model_url and config.model):
        raise SentinelError("--policy endpoint needs --model-url and --model")
    if config.user == "llm" and not (config.user_model_url and config.user_model):
        raise SentinelError("--user llm needs --user-model-url and --user-model (or --model-url and --model)")
    return config


def _retail_scripts(domain: Domain) -> Any:
    from sentinel_async.agents.scripted import ScriptCache
    from sentinel_async.tools.retail import RetailDomain

    if not isinstance(domain, RetailDomain):
        raise SentinelError(
            f"the scripted expert and scripted user play retail tasks; for {domain.name!r} use "
            "--policy endpoint --user llm"
        )
    return ScriptCache(domain)


def _bootstrap_policy(config: EvalConfig) -> Any:
    """The cached bootstrap policy of `config.size` (and build seed, steps and minutes), built on first use;
    weights from `config.checkpoint` when given."""
    from sentinel_async.bootstrap import bootstrap_config, bootstrap_policy, load_or_build
    from sentinel_async.bootstrap.model import load_model
    from sentinel_async.bootstrap.policy import DEFAULT_SAMPLING

    built = load_or_build(
        bootstrap_config(config.size, minutes=config.build_minutes, steps=config.build_steps, seed=config.build_seed)
    )
    if config.checkpoint is not None:
        if not Path(config.checkpoint, "config.json").is_file():
            raise SentinelError(f"no model checkpoint in {config.checkpoint} (expected config.json and weights)")
        built = dataclasses.replace(built, model=load_model(config.checkpoint))
    sampling = msgspec.structs.replace(DEFAULT_SAMPLING, temperature=config.temperature)
    return bootstrap_policy(built, sampling=sampling)


async def build_factories(
    config: EvalConfig, domain: Domain, stack: AsyncExitStack
) -> tuple[PolicyFactory, UserFactory]:
    """Policy and user factories for the configuration; HTTP sessions are closed by `stack`."""
    session = None
    if config.policy == "endpoint" or config.user == "llm":
        import aiohttp

        session = await stack.enter_async_context(aiohttp.ClientSession())

    make_policy: PolicyFactory
    if config.policy == "expert" or config.user == "scripted":
        scripts = _retail_scripts(domain)
    if config.policy == "expert":
        from sentinel_async.agents.scripted import ScriptedExpert

        def make_policy(task: TaskSpec, seed: int) -> Any:
            return ScriptedExpert(task, scripts.domain, script=scripts.get(task))
    elif config.policy == "bootstrap":
        # Built on first use: the build runs its own event loop (demonstrations), so it runs in a worker thread.
        shared_policy = await anyio.to_thread.run_sync(_bootstrap_policy, config)

        def make_policy(task: TaskSpec, seed: int) -> Any:
            return shared_policy
    else:
        from sentinel_async.agents.clients import ChatPolicy, ClientConfig

        assert config.model_url is not None
        assert config.model is not None
        client = ClientConfig(base_url=config.model_url, model=config.model, temperature=config.temperature)
        shared = ChatPolicy(client, session=session)

        def make_policy(task: TaskSpec, seed: int) -> Any:
            return shared

    make_user: UserFactory
    if config.user == "scripted":
        from sentinel_async.agents.scripted import ScriptedUser

        def make_user(task: TaskSpec, seed: int) -> Any:
            return ScriptedUser(scripts.get(task), seed=seed)
    else:
        from sentinel_async.agents.clients import ChatUser, ClientConfig
        from sentinel_async.tools.instructions import user_instructions

        assert config.user_model_url is not None
        assert config.user_model is not None
        user_client = ClientConfig(base_url=config.user_model_url, model=config.user_model, temperature=0.0)

        def make_user(task: TaskSpec, seed: int) -> Any:
            return ChatUser(user_client, user_instructions(task), session=session)

    return make_policy, make_user


async def run_eval(config: EvalConfig, run_dir: Path, *, progress: bool = True) -> EvalResult:
    """Run an evaluation into `run_dir/events.sqlite` (the folder must exist) and return its result."""
    from tqdm import tqdm

    domain = get_domain(config.domain)
    with SQLiteEventStore(run_dir / "events.sqlite") as store:
        async with AsyncExitStack() as stack:
            make_policy, make_user = await build_factories(config, domain, stack)
            total = len(domain.tasks(config.split)) if not config.task_ids else len(config.task_ids)
            bar = tqdm(total=total * config.trials, desc="episodes", unit="ep", disable=not progress, file=sys.stderr)
            successes = finished = 0

            def on_done(outcome: EpisodeOutcome) -> None:
                nonlocal successes, finished
                successes += int(outcome.reward is not None and outcome.reward.success)
                finished += 1
                bar.update(1)
                bar.set_postfix(pass_rate=f"{successes / finished:.3f}")

            try:
                return await evaluate(
                    config, domain, store, make_policy=make_policy, make_user=make_user, on_done=on_done
                )
            finally:
                bar.close()


def cmd_eval(args: argparse.Namespace) -> int:
    stamp = dt.datetime.now(tz=dt.UTC).strftime("%Y%m%d-%H%M%S")
    run_dir: Path = args.run_dir or Path("runs") / f"eval-{stamp}"
    config = config_from_args(args, run_id=f"eval-{stamp}")
    run_dir.mkdir(parents=True, exist_ok=True)
    result = anyio.run(lambda: run_eval(config, run_dir, progress=not args.no_progress))
    title = f"{config.domain} / {config.split}: policy={config.policy} user={config.user} trials={config.trials}"
    print(format_pass_k_table(result.report, title=title))
    print("terminations: " + ", ".join(f"{k}={v}" for k, v in sorted(result.terminations.items())))
    categories = anyio.run(lambda: _failure_categories(config, run_dir / "events.sqlite"))
    if categories:
        print("failures by first deviation: " + ", ".join(f"{k}={v}" for k, v in categories.most_common()))
    print(f"log: {run_dir / 'events.sqlite'}  (inspect: sentinel log summary {run_dir})")
    (run_dir / "eval-result.json").write_bytes(msgspec.json.format(msgspec.json.encode(result)))
    return 0


async def _failure_categories(config: EvalConfig, log: Path) -> Counter[str]:
    """The deterministic Controller's category of each failed episode of the evaluation (nothing recorded)."""
    from sentinel_async.analysis import evaluations_in, failure_categories

    with SQLiteEventStore(log, read_only=True) as store:
        episode_ids = [e for evaluation in evaluations_in(store) for e in evaluation.episode_ids]
        return await failure_categories(store, get_domain(config.domain), episode_ids)
