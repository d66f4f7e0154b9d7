"""`sentinel run` with guide episodes (`rollout.expert_episodes=1`): every group gets the expert's solved attempt,
so even a policy that solves nothing gets a step per group, and the guide never reaches the Controller."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentinel_async.agents.solver.batching import rebuild_batch
from sentinel_async.events import BatchFormed, EpisodeFinished, FailureDiagnosed, PolicyUpdated
from sentinel_async.store import SQLiteEventStore

pytestmark = [pytest.mark.filterwarnings("ignore::FutureWarning"), pytest.mark.filterwarnings("ignore::UserWarning")]


def test_each_group_learns_from_its_guide(tmp_path: Path) -> None:
    from sentinel_async.cli import main

    run = tmp_path / "run"
    args = ["run", "--run-dir", str(run), "--policy", "tiny-random", "--no-progress", "--rounds", "1"]
    settings = {
        "rollout.tasks_per_round": 2,
        "rollout.group_size": 2,
        "rollout.expert_episodes": 1,
        "rollout.rename_guides": "true",  # the path runs: each guide's customer renamed as text
        "rollout.rename_guide_ids": "true",  # and its ids
        "rollout.rename_guide_payment_kinds": "true",  # and its payment kinds
        "rollout.max_steps": 6,
        "rollout.concurrency": 3,
        "policy.max_new_tokens": 12,
        "proposer.mode": "off",
        "evaluation.max_tasks": 1,
        "evaluation.max_steps": 6,
    }
    for key, value in settings.items():
        args += ["--set", f"{key}={value}"]
    assert main(args) == 0

    with SQLiteEventStore(run / "events.sqlite", read_only=True) as store:
        events = [r.payload for r in store.read()]
        batches = [e for e in events if isinstance(e, BatchFormed)]
        rebuilt = [rebuild_batch(store, b) for b in batches]
    finished = {e.episode_id: e for e in events if isinstance(e, EpisodeFinished)}
    guides = {e for e, f in finished.items() if f.purpose == "guide"}
    assert len(guides) == 2
    assert all(finished[g].reward == 1.0 for g in guides)
    trained = {g for b in batches for g in b.groups}
    failed = {e.rsplit("-", 1)[0] for e, f in finished.items() if f.purpose == "train" and f.reward < 1}
    assert failed
    assert trained == failed, "a group with a failure and its guide has variance: one step per such group"
    assert len([e for e in events if isinstance(e, PolicyUpdated)]) == len(batches)
    for batch in rebuilt:
        (members,) = batch.groups.values()
        assert len(members) == 3
        (guide,) = set(members) & guides
        others = [batch.advantages[m] for m in members if m != guide]
        assert batch.advantages[guide] > 0
        assert all(batch.advantages[guide] > a for a in others)
    diagnosed = {e.episode_id for e in events if isinstance(e, FailureDiagnosed)}
    assert not diagnosed & guides, "the Controller reads the policy's own episodes only"
    report = (run / "report" / "report.md").read_text()
    assert "Guide episodes (the expert's turns as the policy's tokens, one group member each; not counted above): " \
        "2, solved 2." in report  # fmt: skip
    assert "Training episodes solved: " in report
    assert "/4." in report, "the report counts the policy's own episodes apart from the guides"
