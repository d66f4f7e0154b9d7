"""The slot-copy curriculum waits for copying to be learnt before it makes exercises hard."""

from __future__ import annotations

from sentinel_async.bootstrap.sft import SFTConfig, SlotSchedule


def _run(schedule: SlotSchedule, losses: list[float]) -> tuple[int | None, int]:
    """Feed easy-step losses in order; return (first hard step, first step that is not slot-only)."""
    first_hard = None
    for step, loss in enumerate(losses):
        if schedule.hard(step):
            first_hard = step if first_hard is None else first_hard
        elif schedule.slot_only(step):
            schedule.record_easy(step, loss)
    end = next(step for step in range(10_000) if not schedule.slot_only(step))
    return first_hard, end


def test_a_fixed_schedule_switches_at_its_steps() -> None:
    schedule = SlotSchedule(SFTConfig(slot_steps=12, slot_hard_from=8))
    assert _run(schedule, [2.0] * 30) == (8, 12)


def test_hard_exercises_wait_until_the_easy_loss_is_low_and_the_slot_phase_moves_with_them() -> None:
    config = SFTConfig(slot_steps=120, slot_hard_from=80, slot_learnt_below=0.3)
    learnt_from_130 = [2.0] * 130 + [0.1] * 200  # the mean of the last 20 drops below 0.3 at step 147
    schedule = SlotSchedule(config)
    assert _run(schedule, learnt_from_130) == (148, 188)
    assert schedule.learnt_at == 148
    learnt_early = [0.1] * 300
    assert _run(SlotSchedule(config), learnt_early) == (80, 120), "never before slot_hard_from"


def test_a_curriculum_that_never_learns_waits_at_most_slot_steps() -> None:
    config = SFTConfig(slot_steps=120, slot_hard_from=80, slot_learnt_below=0.3)
    schedule = SlotSchedule(config)
    assert _run(schedule, [2.0] * 400) == (200, 240)
    assert schedule.learnt_at is None, "waited out, not learnt: the build reports it"


def test_with_a_copy_check_copying_is_learnt_only_once_the_check_passes_and_it_is_asked_every_few_steps() -> None:
    config = SFTConfig(slot_steps=200, slot_hard_from=80, slot_learnt_below=0.3, slot_check_every=10)
    schedule = SlotSchedule(config)
    asked: list[int] = []

    def copies() -> bool:  # names copied from the fourth check on
        asked.append(len(asked))
        return len(asked) >= 4

    for step in range(300):
        if schedule.slot_only(step) and not schedule.hard(step):
            schedule.record_easy(step, 0.1, copies)
    assert len(asked) == 4, "asked once the loss is low, then every 10 easy steps, never after it passed"
    assert schedule.learnt_at == 19 + 30 + 1, "the loss was low from step 19; the check passed 30 steps later"
    assert schedule.hard_from == 80, "hard exercises still wait for slot_hard_from"
