"""`GRPOTrainer`: one optimizer step per batch of GRPO groups, on torch and transformers (full or LoRA).

Objective, per batch B of sampled tokens t (loss mask 1, N = |B|), with A_t the group-normalised advantage
(r - mean) / (std + 1e-6) of t's episode (times `negative_weight` where negative), p_θ the policy at
`temperature`, q the rollout engine's log-probs:

    r_t = exp(log p_θ(t) - log q(t))                                   (ratio to the behaviour policy)
    s_t = min(r_t·A_t, clip(r_t, 1 - clip_low, 1 + clip_high)·A_t)     (PPO clip against the rollout)
    s_t = max(s_t, tis_cap·A_t)   if A_t < 0                           (ratio truncated at tis_cap)
    L   = (1/N) Σ_t [ -s_t + kl_coef·(exp(d_t) - d_t - 1) ],  d_t = log p_ref(t) - log p_θ(t)   (k3 KL)

A token's gradient is zero when clipping or truncation binds (`clip_fraction`). The reference is the
initial model (full fine-tuning) or the model with adapters disabled (LoRA). Sequences are sorted by length
and packed into micro-batches under a padded-token budget; gradients accumulate with the 1/N of the whole
batch, then are clipped to `max_grad_norm` and AdamW steps. Each step saves `v{version:06d}/` (a
`save_pretrained` model, or a peft adapter) with `meta.json` and the AdamW state (`optimizer.pt`), and returns
the metrics for `PolicyUpdated`. A trainer built with `resume=True` at version N continues exactly where the
one that saved `vN/` stopped: it loads that optimizer state (and, in full mode with a KL term, takes the
initial model `v000000/` as its reference).
"""

from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path
from typing import Any, Literal

import anyio
import msgspec

from sentinel_async.agents.solver.batching import TrainingBatch
from sentinel_async.agents.solver.grpo import STAT_NAMES, GRPOConfig, sampled_logprobs, token_objective
from sentinel_async.agents.solver.samples import TrainingSample
from sentinel_async.devices import autocast, model_device
from sentinel_async.errors import SentinelError
from sentinel_async.logs import get_logger

_log = get_logger("trainer")

OPTIMIZER_FILE = "optimizer.pt"
"""The AdamW state (`optimizer.state_dict()`, torch.save) saved beside each checkpoint's weights."""


class LoraSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A peft LoRA on the named linear layers."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class TrainerConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Optimizer, objective, precision and micro-batching of the trainer; `lora` None means full fine-tuning."""

    lr: float = 1e-5
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    max_grad_norm: float = 1.0
    objective: GRPOConfig = GRPOConfig()
    bf16: bool = False
    max_tokens_per_microbatch: int = 8192
    microbatch_overhead_tokens: int = 256
    pad_token_id: int = 0
    lora: LoraSpec | None = None
    seed: int = 0


class CheckpointMeta(msgspec.Struct, frozen=True, kw_only=True):
    """`meta.json` of a checkpoint folder: what produced it (the optimizer state is `optimizer.pt` beside it)."""

    version: int
    mode: Literal["full", "lora"]
    batch_id: str | None = None
    step: int | None = None
    parent_version: int | None = None
    config: TrainerConfig = TrainerConfig()
    metrics: dict[str, float] = msgspec.field(default_factory=dict)


class StepResult(msgspec.Struct, frozen=True, kw_only=True):
    """A finished step: the new version, its checkpoint folder and metrics."""

    version: int
    batch_id: str
    step: int
    checkpoint: str
    metrics: dict[str, float]


def checkpoint_path(checkpoint_dir: str | Path, version: int) -> Path:
    return Path(checkpoint_dir) / f"v{version:06d}"


def read_meta(path: str | Path) -> CheckpointMeta:
    return msgspec.json.decode(Path(path, "meta.json").read_bytes(), type=CheckpointMeta)


def plan_microbatches(lengths: list[int], max_tokens: int, overhead: int = 256) -> list[list[int]]:
    """Sample indices in micro-batches of similar length, minimising padded positions + `overhead` per batch.

    Sorted longest first, then split optimally (dynamic programming over contiguous runs) so that each
    micro-batch's padded size (count × longest) fits `max_tokens` (a longer sample goes alone).
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    n = len(order)
    best = [0.0] + [float("inf")] * n  # best[j]: cost of the first j sorted samples
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(j - 1, -1, -1):
            longest = lengths[order[i]]
            if (j - i) * longest > max_tokens and j - i > 1:
                break
            cost = best[i] + (j - i) * longest + overhead
            if cost < best[j]:
                best[j], cut[j] = cost, i
    batches: list[list[int]] = []
    j = n
    while j > 0:
        batches.append(order[cut[j] : j])
        j = cut[j]
    return batches[::-1]


class GRPOTrainer:
    """Owns the policy, its optimizer and reference; `step` runs synchronously (use `astep` from async code)."""

    def __init__(
        self,
        model: Any,
        config: TrainerConfig,
        checkpoint_dir: str | Path,
        *,
        version: int = 0,
        reference: Any | None = None,
        save_initial: bool = True,
        resume: bool = False,
    ) -> None:
        """`model` is the policy at `version`. With `resume`, continue the training that saved `version`'s
        checkpoint: its optimizer state is loaded when present (an older checkpoint without one starts AdamW
        from zero moments, with a warning), and a full-mode KL reference defaults to the initial model."""
        import torch

        self.config = config
        self.checkpoint_dir = Path(checkpoint_dir)
        self.version = version
        self.mode: Literal["full", "lora"] = "lora" if config.lora is not None else "full"
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            if config.lora is not None and not _is_peft(model):
                if save_initial:
                    model.save_pretrained(str(self.checkpoint_dir / "base"))
                model = _wrap_lora(model, config.lora)
        self.model = model
        self.reference = reference
        if self.reference is None and self.mode == "full" and config.objective.kl_coef > 0:
            initial = checkpoint_path(self.checkpoint_dir, 0)
            if resume and version > 0 and Path(initial, "meta.json").exists():
                self.reference = load_policy(self.checkpoint_dir, 0).eval().requires_grad_(False)
            else:
                self.reference = copy.deepcopy(model).eval().requires_grad_(False)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
        if resume:
            self.load_optimizer_state(version)
        if save_initial and not checkpoint_path(self.checkpoint_dir, version).exists():
            self.save_checkpoint(CheckpointMeta(version=version, mode=self.mode, config=config))

    def load_optimizer_state(self, version: int) -> bool:
        """Load `version`'s saved optimizer state; False (and a warning) when its checkpoint has none."""
        import torch

        path = checkpoint_path(self.checkpoint_dir, version) / OPTIMIZER_FILE
        if not path.exists():
            _log.warning("no optimizer state to resume; AdamW starts from zero moments", path=str(path))
            return False
        state = torch.load(path, map_location="cpu", weights_only=True)
        try:
            self.optimizer.load_state_dict(state)
        except (ValueError, KeyError) as error:
            raise SentinelError(
                f"the optimizer state in {path} does not fit this trainer's parameters ({error}); "
                "was the run trained with another model or LoRA configuration?"
            ) from error
        _log.info("optimizer state resumed", path=str(path), version=version)
        return True

    # --- the step ---------------------------------------------------------------------------------------

    def step(self, batch: TrainingBatch) -> StepResult:
        """One optimizer step on `batch`; saves the new version's checkpoint."""
        import torch

        start = time.perf_counter()
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        sums = self.evaluate(batch, backward=True)
        params = [p for p in self.model.parameters() if p.requires_grad]
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, self.config.max_grad_norm))
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        train_s = time.perf_counter() - start
        parent, self.version = self.version, self.version + 1
        metrics = {**sums, "grad_norm": grad_norm, "train_seconds": train_s}
        metrics["tokens_per_second"] = metrics["positions"] / train_s if train_s > 0 else 0.0
        meta = CheckpointMeta(
            version=self.version, mode=self.mode, batch_id=batch.batch_id, step=batch.step,
            parent_version=parent, config=self.config, metrics=metrics,
        )  # fmt: skip
        path = self.save_checkpoint(meta)
        return StepResult(
            version=self.version, batch_id=batch.batch_id, step=batch.step, checkpoint=str(path), metrics=metrics
        )

    async def astep(self, batch: TrainingBatch) -> StepResult:
        """`step` in a worker thread, so the event loop keeps running episodes."""
        return await anyio.to_thread.run_sync(self.step, batch)

    def evaluate(self, batch: TrainingBatch, *, backward: bool = False) -> dict[str, float]:
        """The batch's loss and statistics at the current weights (accumulating gradients with `backward`)."""
        import torch

        samples = batch.samples
        total = sum(s.num_sampled for s in samples)
        if total == 0:
            raise ValueError(f"batch {batch.batch_id} has no sampled tokens to train on")
        sums = dict.fromkeys(STAT_NAMES, 0.0)
        positions = padded = 0
        lengths = [len(s.input_ids) for s in samples]
        groups = plan_microbatches(
            lengths, self.config.max_tokens_per_microbatch, self.config.microbatch_overhead_tokens
        )
        for indices in groups:
            chosen = [samples[i] for i in indices]
            tensors = self._collate(chosen, [batch.advantages[s.episode_id] for s in chosen])
            positions += sum(len(s.input_ids) for s in chosen)
            padded += tensors["input_ids"].numel()
            with torch.set_grad_enabled(backward):
                loss_sum, stats = self._micro(tensors)
                if backward:
                    (loss_sum / total).backward()
            for name in STAT_NAMES:
                sums[name] += float(stats[name])
        out = {name: value / total for name, value in sums.items()}
        out["clip_fraction"] = out.pop("clipped")
        out["truncated_fraction"] = out.pop("truncated")
        out["logprob_mismatch"] = out.pop("abs_logprob_diff")
        out["ratio_mean"] = out.pop("ratio")
        out.update(tokens=float(total), positions=float(positions), padded_positions=float(padded))
        out["padding_fraction"] = 1.0 - positions / padded
        out.update(microbatches=float(len(groups)), samples=float(len(samples)), episodes=float(len(batch.traces)))
        return out

    def _collate(self, samples: list[TrainingSample], advantages: list[float]) -> dict[str, Any]:
        import torch

        width = max(len(s.input_ids) for s in samples)
        ids = torch.full((len(samples), width), self.config.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(samples), width), dtype=torch.long)
        mask = torch.zeros((len(samples), width))
        rollout = torch.zeros((len(samples), width))
        for row, sample in enumerate(samples):
            n = len(sample.input_ids)
            ids[row, :n] = torch.tensor(sample.input_ids)
            attention[row, :n] = 1
            mask[row, :n] = torch.tensor(sample.loss_mask, dtype=torch.float32)
            rollout[row, :n] = torch.tensor(sample.rollout_logprobs, dtype=torch.float32)
        adv = torch.tensor(advantages, dtype=torch.float32)[:, None].expand(-1, width)
        tensors = {"input_ids": ids, "attention_mask": attention, "mask": mask, "rollout": rollout, "adv": adv}
        device = model_device(self.model)
        return {name: tensor.to(device) for name, tensor in tensors.items()}

    def _logprobs(self, model: Any, tensors: dict[str, Any]) -> Any:
        with autocast(model_device(model), self.config.bf16):
            logits = model(input_ids=tensors["input_ids"], attention_mask=tensors["attention_mask"]).logits
        return sampled_logprobs(logits, tensors["input_ids"], self.config.objective.temperature)

    def _micro(self, tensors: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        import torch

        objective = self.config.objective
        logp = self._logprobs(self.model, tensors)
        ref = None
        if objective.kl_coef > 0:
            with torch.no_grad():
                if self.mode == "lora":
                    with self.model.disable_adapter():
                        ref = self._logprobs(self.model, tensors)
                else:
                    ref = self._logprobs(self.reference, tensors)
        return token_objective(logp, tensors["rollout"], tensors["adv"], tensors["mask"], objective, ref)

    # --- weights out ---------------------------------------------------------------------------------------

    def save_checkpoint(self, meta: CheckpointMeta) -> Path:
        """Write `v{version}/`: the model (`save_pretrained`; an adapter in LoRA mode), `optimizer.pt` and
        `meta.json` (last, so a folder with a meta.json is complete)."""
        import torch

        path = checkpoint_path(self.checkpoint_dir, meta.version)
        path.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(str(path))
        partial = path / f"{OPTIMIZER_FILE}.partial"
        torch.save(self.optimizer.state_dict(), partial)
        os.replace(partial, path / OPTIMIZER_FILE)
        Path(path, "meta.json").write_bytes(json.dumps(msgspec.to_builtins(meta), indent=1).encode())
        return path

    def export_state_dict(self) -> dict[str, Any]:
        """A detached copy of the full model's weights (LoRA merged in), for an in-process generator."""
        if self.mode == "lora":
            merged = copy.deepcopy(self.model).merge_and_unload()
            return {k: v.detach().clone() for k, v in merged.state_dict().items()}
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def adapter_path(self, version: int) -> str | None:
        """The saved adapter folder of `version` (LoRA mode), for a vLLM server."""
        return str(checkpoint_path(self.checkpoint_dir, version)) if self.mode == "lora" else None


def _is_peft(model: Any) -> bool:
    return hasattr(model, "peft_config")


def _wrap_lora(model: Any, spec: LoraSpec) -> Any:
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=spec.r, lora_alpha=spec.alpha, lora_dropout=spec.dropout, target_modules=list(spec.target_modules)
    )
    return get_peft_model(model, lora)


def load_policy(checkpoint_dir: str | Path, version: int) -> Any:
    """The policy as it was at `version`, from its checkpoint folder (the base model plus adapter for LoRA)."""
    from transformers import AutoModelForCausalLM

    path = checkpoint_path(checkpoint_dir, version)
    meta = read_meta(path)
    if meta.mode == "full":
        return AutoModelForCausalLM.from_pretrained(str(path))
    from peft import PeftModel

    base = AutoModelForCausalLM.from_pretrained(str(Path(checkpoint_dir) / "base"))
    return PeftModel.from_pretrained(base, str(path), is_trainable=True)
