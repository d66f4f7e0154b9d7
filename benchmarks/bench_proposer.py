"""Proposer benchmark: yield (accepted / attempted) per failure category and per intent, and candidates per second.

    python benchmarks/bench_proposer.py                 # 12 candidates per category, full verification
    python benchmarks/bench_proposer.py --n 4 --no-tau2 # quick: skip tau2's own scorer (about 30x faster)

One engine proposes `--n` candidates for each recipe family (as a Controller pattern of that category) and
`--n` untargeted `general` ones; dedup state is shared, as in a run. Rejections are counted by reason.
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter, defaultdict

from sentinel_async.agents.proposer import TARGETED, Candidate, ProposalEngine, ProposerConfig
from sentinel_async.events import FailurePattern


def _row(name: str, cands: list[Candidate], seconds: float | None = None) -> str:
    ok = sum(c.accepted for c in cands)
    reasons = Counter(c.reason for c in cands if not c.accepted)
    why = ", ".join(f"{r} {n}" for r, n in reasons.most_common()) or "-"
    rate = f"{len(cands) / seconds:6.2f}" if seconds else "     -"
    count = f"{ok}/{len(cands)}"
    return f"| {name:<28} | {count:>8} | {ok / max(1, len(cands)):5.0%} | {rate} | {why} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=12, help="candidates per category")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-tau2", action="store_true", help="skip the tau2 scorer check")
    args = parser.parse_args()

    started = time.perf_counter()
    engine = ProposalEngine(config=ProposerConfig(check_tau2=not args.no_tau2))
    general = ProposalEngine(engine.domain, ProposerConfig(mode="general", check_tau2=not args.no_tau2))
    general.seen = engine.seen  # one dedup set, as in a run
    print(f"engine ready in {time.perf_counter() - started:.2f} s")

    by_category: dict[str, list[Candidate]] = {}
    seconds: dict[str, float] = {}
    for index, category in enumerate([*sorted(TARGETED), "general"]):
        rng = random.Random(args.seed * 1000 + index)
        t0 = time.perf_counter()
        if category == "general":
            cands = general.propose(None, args.n, rng)
        else:
            pattern = FailurePattern(pattern_id=f"bench-{category}", category=category, description="", count=1)
            cands = engine.propose(pattern, args.n, rng)
        seconds[category] = time.perf_counter() - t0
        by_category[category] = cands

    rule = f"|{'-' * 30}|{'-' * 10}|{'-' * 7}|{'-' * 8}|{'-' * 12}|"
    print("\nYield per pattern category")
    print(f"| {'category':<28} | accepted | yield | cand/s | rejections |")
    print(rule)
    everything = [c for cands in by_category.values() for c in cands]
    for category, cands in by_category.items():
        print(_row(category, cands, seconds[category]))
    print(_row("all", everything, sum(seconds.values())))

    by_kind: dict[str, list[Candidate]] = defaultdict(list)
    for cand in everything:
        for kind in set(cand.kinds):
            by_kind[kind].append(cand)
    print("\nYield per intent kind (a candidate counts for each of its kinds)")
    print(f"| {'intent':<28} | accepted | yield | cand/s | rejections |")
    print(rule)
    for kind in sorted(by_kind):
        print(_row(kind, by_kind[kind]))
    times = sorted(c.seconds for c in everything)
    rate = len(everything) / sum(seconds.values())
    tau2 = "off" if args.no_tau2 else "on"
    median = times[len(times) // 2] * 1000
    print(f"\n{len(everything)} candidates, median {median:.0f} ms each, {rate:.2f} candidates/s (tau2 check {tau2})")


if __name__ == "__main__":
    main()
