"""PatternTracker: keys, counts, bounded links, history over rounds, and rebuilding from the log."""

from __future__ import annotations

from sentinel_async.agents.controller import PatternTracker, pattern_of
from sentinel_async.events import Event, Evidence, FailureDiagnosed, FailurePatternsUpdated


def diagnosed(episode: str, category: str, tool: str | None = None) -> FailureDiagnosed:
    evidence = [Evidence(episode_id=episode, turn=3, expected=f"{tool}(order_id=1)" if tool else "x", actual="y")]
    return FailureDiagnosed(episode_id=episode, task_id="t", category=category, summary=f"{category} in {episode}",
                            evidence=evidence)  # fmt: skip


def test_keys_by_category_and_tool() -> None:
    assert pattern_of(diagnosed("e", "wrong_item", "modify_pending_order_items"))[0] == (
        "wrong_item:modify_pending_order_items"
    )
    assert pattern_of(diagnosed("e", "wrong_information", "get_order_details"))[0] == "wrong_information"
    # a product never looked up and an order never looked up are different skills
    assert pattern_of(diagnosed("e", "missing_lookup", "get_product_details"))[0] == (
        "missing_lookup:get_product_details"
    )


def test_patterns_carry_their_subkey_for_the_proposer() -> None:
    tracker = PatternTracker()
    tracker.observe(diagnosed("e1", "missing_write", "return_delivered_order_items"))
    tracker.observe(diagnosed("e2", "missing_authentication"))
    by_id = {p.pattern_id: p for p in tracker.close_round()}
    assert by_id["missing_write:return_delivered_order_items"].subkey == "return_delivered_order_items"
    assert by_id["missing_authentication"].subkey is None


def test_history_new_persistent_resolved() -> None:
    tracker = PatternTracker(resolve_after=2, max_episode_ids=3)
    for n in range(5):
        tracker.observe(diagnosed(f"a{n}", "wrong_item", "exchange_delivered_order_items"))
    tracker.observe(diagnosed("b0", "premature_stop"))
    round0 = {p.pattern_id: p for p in tracker.close_round()}
    assert round0["wrong_item:exchange_delivered_order_items"].status == "new"
    assert round0["wrong_item:exchange_delivered_order_items"].count == 5
    assert round0["wrong_item:exchange_delivered_order_items"].episode_ids == ["a2", "a3", "a4"]  # bounded, latest
    tracker.observe(diagnosed("a5", "wrong_item", "exchange_delivered_order_items"))
    round1 = {p.pattern_id: p for p in tracker.close_round()}
    assert round1["wrong_item:exchange_delivered_order_items"].status == "persistent"
    assert round1["premature_stop"].status == "new"  # unseen for one round: not resolved yet
    round2 = {p.pattern_id: p for p in tracker.close_round()}
    assert round2["premature_stop"].status == "resolved"
    assert round2["wrong_item:exchange_delivered_order_items"].status == "persistent"
    round3 = {p.pattern_id: p for p in tracker.close_round()}
    assert round3["wrong_item:exchange_delivered_order_items"].status == "resolved"
    tracker.observe(diagnosed("b1", "premature_stop"))
    again = {p.pattern_id: p for p in tracker.close_round()}
    assert again["premature_stop"].status == "new"
    assert again["premature_stop"].count == 2
    assert [p.status for p in tracker.patterns()][-1] == "resolved"  # resolved patterns sort last


def test_rebuild_from_events_resumes_the_same_state() -> None:
    live = PatternTracker()
    log: list[Event] = []
    for n in range(7):
        event = diagnosed(f"e{n}", ["wrong_item", "missing_write"][n % 2], "cancel_pending_order")
        live.observe(event)
        log.append(event)
        if n % 3 == 2:
            log.append(FailurePatternsUpdated(patterns=live.close_round(), episodes_seen=n + 1))
    rebuilt = PatternTracker.rebuild(log)
    assert rebuilt.patterns() == live.patterns()
    assert (rebuilt.round, rebuilt.pending) == (live.round, live.pending) == (2, 1)
