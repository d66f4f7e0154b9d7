"""The Proposer: failure patterns -> verified, executable retail tasks (trajectory first), exactly once."""

from sentinel_async.agents.proposer.export import proposed_tasks, tau2_task_dicts, write_tasks_json
from sentinel_async.agents.proposer.generators import DRAFT_KINDS, Draft, Recipe, Targeting, generate
from sentinel_async.agents.proposer.sampling import RecordPool, SplitRecords, split_records
from sentinel_async.agents.proposer.service import (
    Candidate,
    ProposalEngine,
    Proposer,
    ProposerConfig,
    general_tasks,
    propose,
)
from sentinel_async.agents.proposer.signature import SignatureParts, benchmark_signatures, signature_parts
from sentinel_async.agents.proposer.targets import TARGETED, family, general_recipe, recipe_for
from sentinel_async.agents.proposer.verify import Verification, policy_violations, verify

__all__ = [
    "DRAFT_KINDS",
    "TARGETED",
    "Candidate",
    "Draft",
    "ProposalEngine",
    "Proposer",
    "ProposerConfig",
    "Recipe",
    "RecordPool",
    "SignatureParts",
    "SplitRecords",
    "Targeting",
    "Verification",
    "benchmark_signatures",
    "family",
    "general_recipe",
    "general_tasks",
    "generate",
    "policy_violations",
    "propose",
    "proposed_tasks",
    "recipe_for",
    "signature_parts",
    "split_records",
    "tau2_task_dicts",
    "verify",
    "write_tasks_json",
]
