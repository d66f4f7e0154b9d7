"""The GRPO token objective (see `trainer` for the full statement) and its per-token statistics.

Functions here take already aligned tensors: the policy's log-probs of the sampled ids `logp` [B, T], the
rollout engine's `rollout_logp`, the per-token advantage `adv`, the loss `mask` (1.0 on sampled ids) and
optionally the reference policy's `ref_logp`. They return sums, so a caller can accumulate micro-batches and
divide by the batch's total number of sampled tokens (the token-level mean).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    import torch


class GRPOConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Clip range of the ratio to the rollout policy, truncation cap, KL coefficient and sampling temperature.

    `temperature` must be the temperature the rollout log-probs were computed at (processed log-probs).
    """

    clip_low: float = 0.2
    clip_high: float = 0.28
    tis_cap: float = 2.0
    kl_coef: float = 0.0
    temperature: float = 1.0
    negative_weight: float = 1.0
    """Scale of negative advantages (asymmetric REINFORCE). Below 1, a failed episode pushes its tokens down
    less than a solved one pulls its tokens up: a failure's tokens are mostly right (the format, the greeting,
    the lookups), and on a small policy pushing them down drains probability into degenerate text. 0 keeps
    only the successes (and guide episodes)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.negative_weight <= 1.0:
            raise ValueError(f"negative_weight must be in [0, 1], got {self.negative_weight}")


STAT_NAMES = ("loss", "clipped", "truncated", "abs_logprob_diff", "rollout_kl", "ref_kl", "ratio")
"""The sums `token_objective` returns (each over the masked tokens)."""


def sampled_logprobs(logits: torch.Tensor, input_ids: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """log p(input_ids[:, t] | input_ids[:, :t]) for t >= 1, as [B, T]; position 0 gets 0.0.

    Computed in float32 from `logits` [B, T, V] (position t predicts t + 1).
    """
    import torch

    scaled = logits[:, :-1].float()
    if temperature != 1.0:
        scaled = scaled / temperature
    targets = input_ids[:, 1:].unsqueeze(-1)
    picked = torch.gather(scaled, -1, targets).squeeze(-1) - torch.logsumexp(scaled, dim=-1)
    return torch.nn.functional.pad(picked, (1, 0))


def token_objective(
    logp: torch.Tensor,
    rollout_logp: torch.Tensor,
    adv: torch.Tensor,
    mask: torch.Tensor,
    config: GRPOConfig,
    ref_logp: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The summed token loss (differentiable) and detached statistic sums, both over `mask`.

    Per token: r = exp(logp - rollout_logp); s = min(r·A, clip(r, 1-clip_low, 1+clip_high)·A); for A < 0,
    s = max(s, tis_cap·A) (the ratio is truncated at `tis_cap`); loss = -s + kl_coef·k3(ref‖policy). A < 0 is
    first scaled by `negative_weight`.
    """
    import torch

    if config.negative_weight != 1.0:
        adv = torch.where(adv < 0, adv * config.negative_weight, adv)
    log_ratio = logp - rollout_logp
    ratio = torch.exp(log_ratio)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1.0 - config.clip_low, 1.0 + config.clip_high) * adv
    surrogate = torch.minimum(unclipped, clipped)
    truncated = torch.where(adv < 0, torch.maximum(surrogate, config.tis_cap * adv), surrogate)
    per_token = -truncated
    stats: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        r = ratio.detach()
        no_grad_clip = ((adv > 0) & (r > 1.0 + config.clip_high)) | ((adv < 0) & (r < 1.0 - config.clip_low))
        cut = (adv < 0) & (r > config.tis_cap)
        stats["clipped"] = ((no_grad_clip | cut).float() * mask).sum()
        stats["truncated"] = (cut.float() * mask).sum()
        stats["abs_logprob_diff"] = (log_ratio.detach().abs() * mask).sum()
        stats["rollout_kl"] = ((r - 1.0 - log_ratio.detach()) * mask).sum()
        stats["ratio"] = (r * mask).sum()
    if ref_logp is not None and config.kl_coef > 0:
        delta = ref_logp - logp
        k3 = torch.exp(delta) - delta - 1.0
        per_token = per_token + config.kl_coef * k3
        stats["ref_kl"] = (k3.detach() * mask).sum()
    else:
        stats["ref_kl"] = torch.zeros((), dtype=logp.dtype)
    loss_sum = (per_token * mask).sum()
    stats["loss"] = loss_sum.detach()
    return loss_sum, stats
