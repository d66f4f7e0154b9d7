"""The Solver: GRPO training on recorded rollouts, and weight sync to the rollout engine.

torch, transformers and peft are imported only when a trainer is built or used.
"""

from sentinel_async.agents.solver.batching import BatchingConfig, BatchPlan, GroupTracker, TrainingBatch, plan_batch
from sentinel_async.agents.solver.grpo import GRPOConfig
from sentinel_async.agents.solver.replay import ReplayError, replay_batch
from sentinel_async.agents.solver.samples import EpisodeTrace, TrainingSample, build_samples, load_trace
from sentinel_async.agents.solver.service import Solver, SolverConfig
from sentinel_async.agents.solver.trainer import GRPOTrainer, LoraSpec, StepResult, TrainerConfig
from sentinel_async.agents.solver.weights import InProcessSync, VLLMLoRASync, WeightSync, check_versions

__all__ = [
    "BatchPlan",
    "BatchingConfig",
    "EpisodeTrace",
    "GRPOConfig",
    "GRPOTrainer",
    "GroupTracker",
    "InProcessSync",
    "LoraSpec",
    "ReplayError",
    "Solver",
    "SolverConfig",
    "StepResult",
    "TrainerConfig",
    "TrainingBatch",
    "TrainingSample",
    "VLLMLoRASync",
    "WeightSync",
    "build_samples",
    "check_versions",
    "load_trace",
    "plan_batch",
    "replay_batch",
]
