"""What a bootstrap policy (and any checkpoint of a run) has learnt, teacher-forced, before an episode is played.

The dialogue expert plays every task of a split once with the scripted user; the model then reads each
conversation on the prompts it is shown and counts an assistant turn right when its greedy choice matches every
token (`sentinel_async.bootstrap.probe`). Printed per model: exact turns by kind, payment kinds right (the
first token of each payment method id written), and how many conversations miss
0, 1, 2, ... tool calls: a task that misses one call is one skill away from being solved.

    python examples/probe.py                                  # the default bootstrap on the test split
    python examples/probe.py --size tiny-names --per-task     # another build, with each task's missed calls
    python examples/probe.py runs/exp/sentinel-s0/checkpoints/v30   # the bootstrap and a run's checkpoint
    python examples/probe.py --size tiny-kinds --kind-cues    # which cue picks a payment method's kind

`--kind-cues` asks what the model reads a payment kind from: the payment kinds right again, with every id's kind
cycled (`credit_card` -> `paypal` -> `gift_card` -> `credit_card`, tool results too, the customer's words kept),
and with only the customer's words cycled (`my gift card (paypal_7644869)`). A model that copies the id stays
right under the first and the second; one that goes by the words follows the second; one with a prior, neither.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="*", type=Path, help="model folders to probe besides the bootstrap")
    parser.add_argument("--size", default="tiny", help="bootstrap size (tokenizer and prompt view)")
    parser.add_argument("--build-seed", type=int, default=None)
    parser.add_argument("--build-steps", type=int, default=None)
    parser.add_argument("--build-minutes", type=float, default=None)
    parser.add_argument("--split", default="test", choices=["train", "test"])
    parser.add_argument("--per-task", action="store_true", help="print each task's missed turns")
    parser.add_argument("--kind-cues", action="store_true", help="payment kinds with ids' or words' kinds cycled")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import torch
    from transformers import AutoModelForCausalLM

    from sentinel_async.bootstrap.demos import DemoConfig, generate_demos
    from sentinel_async.bootstrap.probe import turn_accuracy
    from sentinel_async.policies import load_policy
    from sentinel_async.run_config import PolicyConfig
    from sentinel_async.tools.retail import RetailDomain

    args = parse_args(argv)
    torch.set_num_threads(1)
    config = PolicyConfig(
        size=args.size, build_seed=args.build_seed, build_steps=args.build_steps, build_minutes=args.build_minutes
    )
    loaded = load_policy(config, seed=0)
    domain = RetailDomain()
    demo_config = DemoConfig(split=args.split, episodes_per_task=1, intent_weights={}, seed=1)
    demos = asyncio.run(generate_demos(domain, demo_config))
    models = {f"bootstrap ({args.size})": loaded.train_model}
    models.update({str(path): AutoModelForCausalLM.from_pretrained(str(path)) for path in args.checkpoints})
    tools = domain.tool_schemas()
    for name, model in models.items():
        model.eval()
        accuracy = turn_accuracy(model, loaded.tokenizer, demos.conversations, tools, loaded.policy.view)
        print(f"== {name}\n{accuracy.format()}")
        print("conversations by tool calls missed:", accuracy.calls_from_success())
        if args.kind_cues:
            for cue, conversations in kind_cue_variants(demos.conversations).items():
                cued = turn_accuracy(model, loaded.tokenizer, conversations, tools, loaded.policy.view)
                right, of = cued.payment_kinds
                print(f"  payment kinds right with {cue}: {right} of {of}")
        if args.per_task:
            for task_id, kinds in sorted(zip(demos.task_ids, accuracy.missed, strict=True), key=lambda t: len(t[1])):
                calls = [kind for kind in kinds if kind != "say"]
                print(f"  task {task_id}: {len(calls)} calls missed {', '.join(calls)} ({len(kinds) - len(calls)} say)")
    return 0


def kind_cue_variants(conversations: Any) -> dict[str, Any]:
    """The conversations with every payment id's kind cycled (words kept), and with the words alone cycled."""
    from sentinel_async.bootstrap.ids import PaymentKindRenaming
    from sentinel_async.bootstrap.names import ChainedRenaming

    cycle = {"credit_card": "paypal", "paypal": "gift_card", "gift_card": "credit_card"}
    back = {new: old for old, new in cycle.items()}
    ids = PaymentKindRenaming(0, mapping=cycle)
    words = ChainedRenaming(PaymentKindRenaming(0, mapping=cycle, say_kinds=True), PaymentKindRenaming(0, mapping=back))
    return {
        "ids' kinds cycled": [ids.conversation(c) for c in conversations],
        "the customer's words cycled": [words.conversation(c) for c in conversations],
    }


if __name__ == "__main__":
    raise SystemExit(main())
