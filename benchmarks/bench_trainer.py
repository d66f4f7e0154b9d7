"""Trainer step throughput vs a plain transformers forward+backward on the same tokens, and padding waste.

Builds a random 5M-parameter Qwen3 (256 x 6, vocab ~2.1k, as in docs/notes), synthetic GRPO groups of
multi-turn samples with varied lengths, then times, side by side on identical padded micro-batches:
  * baseline: `model(input_ids, attention_mask, labels)` cross-entropy, backward, AdamW step;
  * trainer:  `GRPOTrainer.step` (loss, statistics, grad clip, AdamW, checkpoint write) on the same samples.
Goals: trainer tokens/s >= 0.8x baseline; padding < 10% of positions.

    .venv/bin/python benchmarks/bench_trainer.py [--steps 3] [--bf16] [--threads 2]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from typing import Any

import torch

from sentinel_async.agents.solver.batching import make_batch
from sentinel_async.agents.solver.samples import EpisodeTrace, TrainingSample
from sentinel_async.agents.solver.trainer import GRPOTrainer, TrainerConfig, plan_microbatches
from sentinel_async.testing.tiny_models import build_tiny_qwen3


def synthetic_groups(vocab: int, groups: int, size: int, rng: random.Random) -> list[tuple[str, list[EpisodeTrace]]]:
    out: list[tuple[str, list[EpisodeTrace]]] = []
    for g in range(groups):
        members: list[EpisodeTrace] = []
        for i in range(size):
            length = rng.randint(384, 1024)
            ids = [rng.randrange(3, vocab) for _ in range(length)]
            mask = [int(j > length // 3 and rng.random() < 0.4) for j in range(length)]
            lps = [-rng.random() * 3 if m else 0.0 for m in mask]
            sample = TrainingSample(
                episode_id=f"g{g}-{i}", index=0, input_ids=ids, loss_mask=mask, rollout_logprobs=lps
            )
            members.append(
                EpisodeTrace(
                    episode_id=f"g{g}-{i}",
                    task_id="t",
                    group_id=f"g{g}",
                    reward=float(i % 2),
                    started_version=0,
                    turn_versions=[0],
                    samples=[sample],
                )
            )
        out.append((f"g{g}", members))
    return out


def baseline_step(
    model: Any, optimizer: Any, samples: list[TrainingSample], max_tokens: int, overhead: int, bf16: bool
) -> int:
    optimizer.zero_grad(set_to_none=True)
    positions = 0
    for indices in plan_microbatches([len(s.input_ids) for s in samples], max_tokens, overhead):
        chosen = [samples[i] for i in indices]
        width = max(len(s.input_ids) for s in chosen)
        ids = torch.zeros((len(chosen), width), dtype=torch.long)
        attention = torch.zeros_like(ids)
        for row, s in enumerate(chosen):
            ids[row, : len(s.input_ids)] = torch.tensor(s.input_ids)
            attention[row, : len(s.input_ids)] = 1
        labels = ids.masked_fill(attention == 0, -100)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=ids, attention_mask=attention, labels=labels).loss
        loss.backward()
        positions += sum(len(s.input_ids) for s in chosen)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return positions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--groups", type=int, default=2)
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--vocab", type=int, default=2100)
    parser.add_argument("--max-tokens", type=int, default=4096)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = random.Random(0)
    batch = make_batch(1, 0, synthetic_groups(args.vocab, args.groups, args.group_size, rng))

    def new_model() -> Any:
        m = build_tiny_qwen3(args.vocab, hidden_size=args.hidden, num_layers=args.layers, eos_token_id=2)
        return m.train()

    base_model = new_model()
    base_opt = torch.optim.AdamW(base_model.parameters(), lr=1e-5)
    config = TrainerConfig(lr=1e-5, bf16=args.bf16, max_tokens_per_microbatch=args.max_tokens)
    base_times: list[float] = []
    trainer_times: list[float] = []
    train_only: list[float] = []
    metrics: dict[str, float] = {}
    positions = 0
    with tempfile.TemporaryDirectory() as ckpt:
        trainer = GRPOTrainer(new_model(), config, ckpt)
        baseline_step(
            base_model, base_opt, batch.samples, args.max_tokens, config.microbatch_overhead_tokens, args.bf16
        )  # warm-up
        trainer.step(batch)
        for _ in range(args.steps):  # interleaved, so machine load affects both alike
            t = time.perf_counter()
            positions = baseline_step(
                base_model, base_opt, batch.samples, args.max_tokens, config.microbatch_overhead_tokens, args.bf16
            )
            base_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            metrics = trainer.step(batch).metrics
            trainer_times.append(time.perf_counter() - t)
            train_only.append(metrics["train_seconds"])
    base_tps = positions / statistics.median(base_times)
    step_tps = positions / statistics.median(trainer_times)
    train_tps = positions / statistics.median(train_only)
    params = sum(p.numel() for p in base_model.parameters()) / 1e6
    print(f"model {params:.2f}M params, {len(batch.samples)} samples, {positions} positions, "
          f"{int(metrics['tokens'])} sampled tokens, {int(metrics['microbatches'])} micro-batches, "
          f"bf16={args.bf16}, threads={torch.get_num_threads()}")  # fmt: skip
    print(f"plain forward+backward : {base_tps:8.0f} tok/s (median of {args.steps})")
    print(f"trainer step (no ckpt) : {train_tps:8.0f} tok/s  ratio {train_tps / base_tps:.2f}x  (goal >= 0.8x)")
    print(f"trainer step (+ ckpt)  : {step_tps:8.0f} tok/s  ratio {step_tps / base_tps:.2f}x")
    print(f"padding                : {metrics['padding_fraction'] * 100:.1f}% of positions (goal < 10%)")


if __name__ == "__main__":
    main()
