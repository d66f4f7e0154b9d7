"""The run report explains where GRPO's signal came from, or why there was none; evaluation retries; lineage."""

from __future__ import annotations

from sentinel_async.events import EpisodeFinished, Event, GroupsDropped, TaskLineage, TaskProposed
from sentinel_async.report import ReportData, collect, lineage_examples, training_signal
from sentinel_async.store import MemoryEventStore, StreamAppend
from sentinel_async.store.base import as_new_events


def finished(episode_id: str, task_id: str, reward: float) -> EpisodeFinished:
    return EpisodeFinished(episode_id=episode_id, task_id=task_id, termination="user_stop", reward=reward)


def commit(store: MemoryEventStore, stream: str, events: list[Event]) -> None:
    store.commit_sync([StreamAppend(stream_id=stream, events=as_new_events(events))])


def test_all_or_nothing_groups_are_counted_and_explained() -> None:
    store = MemoryEventStore()
    for i in range(4):
        commit(store, f"episode-a{i}", [finished(f"a{i}", "always", 1.0)])
        commit(store, f"episode-n{i}", [finished(f"n{i}", "never", 0.0)])
    commit(store, "solver", [GroupsDropped(groups={"g-always": "zero_variance", "g-never": "zero_variance"})])
    text = "\n".join(training_signal(collect(store)))
    assert "solved: 4/8" in text
    assert "1 always solved, 1 never solved, 0 sometimes" in text
    assert "2 zero variance" in text
    assert "No update was made" in text


def test_mixed_tasks_are_the_ones_that_teach() -> None:
    store = MemoryEventStore()
    for i, reward in enumerate([1.0, 0.0, 1.0, 0.0]):
        commit(store, f"episode-m{i}", [finished(f"m{i}", "mixed", reward)])
    text = "\n".join(training_signal(collect(store)))
    assert "0 always solved, 0 never solved, 1 sometimes" in text
    assert "Groups dropped: none" in text
    assert "No update was made" not in text


def test_the_progress_of_training_episodes_is_compared_between_halves() -> None:
    store = MemoryEventStore()
    for i, progress in enumerate([0.2, 0.4, 0.6, 1.0]):
        event = EpisodeFinished(
            episode_id=f"p{i}", task_id="t", termination="user_stop", reward=0.0, breakdown={"progress": progress}
        )
        commit(store, f"episode-p{i}", [event])
    text = "\n".join(training_signal(collect(store)))
    assert "0.300 in the first half, 0.800 in the second" in text


def test_an_evaluation_cut_short_is_retried_under_new_episode_ids() -> None:
    from sentinel_async.events import EpisodeStarted
    from sentinel_async.loop import untouched_eval_id
    from sentinel_async.tools.retail import RetailDomain

    store = MemoryEventStore()
    tasks = [task for task in RetailDomain().tasks("test") if task.id in ("5", "9")]
    assert untouched_eval_id(store, "r-eval-v2", tasks, 1) == "r-eval-v2"
    started = EpisodeStarted(episode_id="r-eval-v2-9-0", task_id="9", domain="retail", policy_version=2, seed=0)
    commit(store, "episode-r-eval-v2-9-0", [started])  # a killed process left this episode half-written
    assert untouched_eval_id(store, "r-eval-v2", tasks, 1) == "r-eval-v2-a1"
    assert store.stream_version("episode-r-eval-v2-9-0") == 1, "the cut-short episode stays as it was"


def proposed(task_id: str, pattern: str) -> TaskProposed:
    lineage = TaskLineage(pattern_id=pattern, episode_ids=[f"failed-{task_id}"])
    return TaskProposed(task_id=task_id, domain="tiny", spec={}, signature=task_id, lineage=lineage)


def test_lineage_examples_show_solved_tasks_first_and_every_pattern_once_before_repeats() -> None:
    data = ReportData(
        proposed={t: proposed(t, p) for t, p in [("a1", "pa"), ("a2", "pa"), ("b1", "pb"), ("c1", "pc")]},
        results={"a1": [1.0, 1.0], "a2": [1.0, 0.0], "b1": [0.0, 0.0, 0.0]},
    )
    lines = lineage_examples(data, limit=3)
    assert [line.split("task `")[1].split("`")[0] for line in lines] == ["a1", "b1", "c1"]
    assert lines[0].startswith("- failed episodes failed-a1 -> pattern `pa` -> task `a1` -> later 2/2 successes")
    assert lines[1].endswith("later 0/3 successes")
    assert lines[2].endswith("not played yet")
    assert [line.split("task `")[1].split("`")[0] for line in lineage_examples(data, limit=4)][-1] == "a2"
