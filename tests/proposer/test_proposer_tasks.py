"""Generated tasks verify, score 1 with tau2's evaluator, are playable by the scripted pair, and never touch
the test split; duplicates and broken drafts are rejected with their reason; export reads back in tau2."""

from __future__ import annotations

import importlib.util
import json
import random
import re
from collections import Counter
from pathlib import Path

import msgspec
import pytest

from sentinel_async.agents.episode import EpisodeRunner
from sentinel_async.agents.proposer import (
    DRAFT_KINDS,
    TARGETED,
    Candidate,
    ProposalEngine,
    ProposerConfig,
    Recipe,
    Targeting,
    family,
    generate,
    recipe_for,
    signature_parts,
    verify,
    write_tasks_json,
)
from sentinel_async.agents.proposer.scenario import write_task
from sentinel_async.agents.proposer.signature import replay_changes
from sentinel_async.agents.proposer.verify import gold_trajectory
from sentinel_async.agents.scripted import ScriptedExpert, ScriptedUser, UserScript
from sentinel_async.events import FailurePattern
from sentinel_async.tools.base import GoldAction, UserInstructions
from sentinel_async.tools.retail import RetailDomain, task_from_tau2
from sentinel_async.tools.retail.evaluation import Evaluator, score_with_tau2
from sentinel_async.tools.tau2_compat import tau2_retail

pytestmark = pytest.mark.skipif(importlib.util.find_spec("tau2") is None, reason="needs the tau2 extra")


def accepted(candidates: list[Candidate]) -> list[Candidate]:
    return [c for c in candidates if c.accepted]


def test_most_candidates_are_accepted_and_cover_many_intents(candidates: list[Candidate]) -> None:
    ok = accepted(candidates)
    assert len(ok) >= 0.8 * len(candidates), Counter(c.reason for c in candidates)
    kinds = {kind for c in ok for kind in c.kinds}
    assert len(kinds) >= 8, kinds
    for candidate in ok:
        assert candidate.task is not None
        assert candidate.task.id.startswith("gen-")
        assert candidate.verification is not None
        assert candidate.verification.ok


def test_gold_trajectory_scores_one_with_tau2(domain: RetailDomain, candidates: list[Candidate]) -> None:
    for candidate in accepted(candidates):
        assert candidate.verification is not None
        assert candidate.task is not None
        assert candidate.verification.checks["tau2_gold_reward"] == 1.0
    # Re-score a few here, independently of the recorded check.
    for candidate in accepted(candidates)[:3]:
        assert candidate.task is not None
        reward = score_with_tau2(candidate.task, gold_trajectory(domain, candidate.task), "user_stop")
        assert reward.reward == 1.0
        assert reward.db_match


async def test_scripted_expert_and_user_solve_generated_tasks(
    domain: RetailDomain, candidates: list[Candidate]
) -> None:
    runner = EpisodeRunner(domain=domain, evaluate=Evaluator(domain).evaluate)
    for candidate in accepted(candidates):
        task = candidate.task
        assert task is not None
        assert task.user_script is not None
        script = msgspec.convert(task.user_script, UserScript)
        outcome = await runner.run(
            task=task,
            policy=ScriptedExpert(task, domain),
            user=ScriptedUser(script, seed=3),
            episode_id=task.id,
            seed=3,
        )
        assert outcome.reward is not None
        assert outcome.reward.reward == 1.0, (candidate.recipe, outcome.termination)
        assert outcome.tool_errors == 0


def _test_split_records(domain: RetailDomain) -> tuple[set[str], set[str]]:
    """Users and orders of the test split, found independently of the proposer's own sampling code."""
    users: set[str] = set()
    orders: set[str] = set()
    emails = {u.email: uid for uid, u in domain.users.items()}
    for task in domain.tasks("test"):
        for action in task.gold_actions:
            users.update(v for k, v in action.arguments.items() if k == "user_id")
            orders.update(v for k, v in action.arguments.items() if k == "order_id")
            if "email" in action.arguments:
                users.add(emails.get(action.arguments["email"], ""))
        text = json.dumps(msgspec.to_builtins(task.user_scenario))
        orders.update(re.findall(r"#W\d{7}", text))
    users.update(domain.orders[o].user_id for o in orders if o in domain.orders)
    return users, orders


def test_no_generated_task_touches_a_test_split_record(domain: RetailDomain, candidates: list[Candidate]) -> None:
    test_users, test_orders = _test_split_records(domain)
    assert test_users
    assert test_orders
    for candidate in accepted(candidates):
        task = candidate.task
        assert task is not None
        assert task.user_script is not None
        assert task.user_script["identity"]["user_id"] not in test_users
        for action in task.gold_actions:
            args = action.arguments
            assert args.get("user_id") not in test_users
            assert args.get("order_id") not in test_orders
            assert (
                args.get("email") is None
                or domain.users[task.user_script["identity"]["user_id"]].email == args["email"]
            )
        for table, key in replay_changes(domain, task.gold_actions):
            assert key not in (test_users if table == "users" else test_orders)
            if table == "orders":
                assert domain.orders[key].user_id not in test_users


def test_duplicates_are_rejected_with_the_reason(domain: RetailDomain, engine: ProposalEngine) -> None:
    config = ProposerConfig(check_tau2=False)
    first = ProposalEngine(domain, config)
    earlier = first.propose(None, 3, random.Random(5))
    second = ProposalEngine(domain, config)  # a restarted proposer that loaded the earlier signatures
    second.remember([c.signature for c in earlier if c.accepted and c.signature])
    again = second.propose(None, 3, random.Random(5))
    for before, after in zip(earlier, again, strict=True):
        if before.accepted:
            assert not after.accepted
            assert after.reason == "duplicate"
            assert after.signature == before.signature
            assert "gen-" in after.detail
    task = domain.task("5")
    benchmark = signature_parts(task.gold_actions, replay_changes(domain, task.gold_actions), task.communicate_info)
    assert benchmark.signature in engine.benchmark


def test_verify_rejects_broken_drafts(domain: RetailDomain, engine: ProposalEngine) -> None:
    recipe = Recipe(label="cancel", kinds=("cancel",), targeting=Targeting(auth="email"))
    draft = generate(domain, engine.pool, recipe, random.Random(11))
    assert draft is not None
    evaluator = engine.evaluator

    def check(mutated: object) -> str | None:
        assert isinstance(mutated, type(draft))
        task = write_task(mutated, "0" * 64, purpose="test")
        result = verify(domain, engine.pool, mutated, task, evaluator, check_tau2=False, check_scripted=False)
        return result.reason

    assert check(draft) is None
    cancel = draft.actions[-1]
    bad_reason = msgspec.structs.replace(cancel, arguments={**cancel.arguments, "reason": "found it cheaper"})
    assert check(msgspec.structs.replace(draft, actions=(*draft.actions[:-1], bad_reason))) == "tool_error"
    assert check(msgspec.structs.replace(draft, allowed_changes=frozenset())) == "unintended_change"
    assert check(msgspec.structs.replace(draft, actions=draft.actions[1:])) == "policy"
    reads_only = tuple(a for a in draft.actions if a.name != "cancel_pending_order")
    assert check(msgspec.structs.replace(draft, actions=reads_only)) == "unintended_change"
    test_order = next(iter(sorted(engine.pool.test.orders)))
    probe = GoldAction(action_id="probe", name="get_order_details", arguments={"order_id": test_order})
    assert check(msgspec.structs.replace(draft, actions=(*draft.actions, probe))) == "test_split_record"


def test_unplayable_task_is_rejected(domain: RetailDomain, engine: ProposalEngine) -> None:
    draft = generate(domain, engine.pool, Recipe(label="return", kinds=("return",)), random.Random(2))
    assert draft is not None
    # The customer asks about something else entirely: the expert's return is never confirmed.
    script = msgspec.structs.replace(
        draft.script, intents=(msgspec.structs.replace(draft.script.intents[0], order_id="#W0000000"),)
    )
    broken = msgspec.structs.replace(draft, script=script)
    task = write_task(broken, "1" * 64, purpose="test")
    result = verify(domain, engine.pool, broken, task, engine.evaluator, check_tau2=False)
    assert result.reason == "scripted_unplayable"


def test_category_strings_map_to_recipe_families() -> None:
    assert family("wrong item/variant") == "wrong_item"
    assert family("WRONG_VARIANT") == "wrong_item"
    assert family("missing items") == "missing_items"
    assert family("missing_authentication") == "missing_authentication"
    assert family("write without a yes") == "write_without_confirmation"
    assert family("no_confirmation") == "write_without_confirmation"
    assert family("policy violation") == "policy_violation"
    assert family("missing lookup") == "missing_lookup"
    assert family("wrong information") == "wrong_information"
    assert family("premature stop/transfer") == "premature_stop"
    assert family("protocol error") == "protocol_error"
    assert family("something new") is None


def test_general_mode_is_uniform_over_intents() -> None:
    rng = random.Random(0)
    counts = Counter(recipe_for(None, rng).kinds[0] for _ in range(5000))
    assert set(counts) == set(DRAFT_KINDS)
    assert max(counts.values()) / min(counts.values()) < 1.3
    targeted = recipe_for("missing items", rng)
    assert targeted.targeting.items == 2


def test_scenario_states_the_facts(candidates: list[Candidate]) -> None:
    for candidate in accepted(candidates):
        task = candidate.task
        assert task is not None
        instructions = task.user_scenario.instructions
        assert isinstance(instructions, UserInstructions)
        script = msgspec.convert(task.user_script, UserScript)
        who = script.identity
        assert (who.email if who.method == "email" else who.zip) in (instructions.known_info or "")
        for intent in script.intents:
            if intent.order_id and "unknown-order" not in candidate.recipe:
                assert intent.order_id in instructions.reason_for_call
            for item in intent.new_items:
                assert item.describe() in instructions.reason_for_call
        assert task.description is not None
        assert task.description.purpose


def test_export_reads_back_in_tau2(tmp_path: Path, candidates: list[Candidate]) -> None:
    tasks = [c.task for c in accepted(candidates) if c.task is not None]
    path = write_tasks_json(tasks, tmp_path / "tasks.json")
    raw = json.loads(path.read_text())
    task_class = tau2_retail().task_class
    loaded = [task_class.model_validate(item) for item in raw]
    assert [t.id for t in loaded] == [t.id for t in tasks]
    for original, back in zip(tasks, loaded, strict=True):
        again = task_from_tau2(back)
        assert again.gold_actions == original.gold_actions
        assert again.communicate_info == original.communicate_info
        assert "user_script" not in json.dumps(raw)


def test_every_controller_category_has_recipes() -> None:
    categories = pytest.importorskip("sentinel_async.agents.controller.categories")
    unmapped = {c.value for c in categories.FailureCategory if family(c.value) is None}
    assert unmapped <= {"system_error", "unknown"}


def test_authentication_failures_get_customers_who_give_name_and_zip(
    domain: RetailDomain, engine: ProposalEngine
) -> None:
    """The authentication small policies fail is by name and zip (the name miscopied): it is what gets stressed."""
    rng = random.Random(0)
    recipes = [recipe_for("missing_authentication", rng) for _ in range(100)]
    by_name = [r for r in recipes if r.targeting.auth == "name_zip"]
    assert 0.3 < len(by_name) / len(recipes) < 0.7
    draft = generate(domain, engine.pool, by_name[0], random.Random(3))
    assert draft is not None
    assert draft.script.identity.method == "name_zip"
    task = write_task(draft, "2" * 64, purpose="test")
    instructions = task.user_scenario.instructions
    assert isinstance(instructions, UserInstructions)
    assert instructions.unknown_info == "You do not remember your email address."


def test_plain_difficulty_keeps_the_first_request_and_the_authentication_and_drops_the_stressors(
    domain: RetailDomain,
) -> None:
    """For a policy that fails plain tasks already, targeted tasks without the recipes' stressors."""
    rng = random.Random(0)
    for category in sorted(TARGETED):
        for _ in range(10):
            recipe = recipe_for(category, rng, "plain")
            assert len(recipe.kinds) == 1
            assert recipe.label.endswith("-plain")
            targeting = recipe.targeting
            assert (targeting.similar, targeting.unknown_order, targeting.items) == (False, False, 0)
            assert (targeting.conditional_confirmation, targeting.gift_card, targeting.paypal) == (False, False, False)
    auth = [recipe_for("missing_authentication", rng, "plain") for _ in range(50)]
    assert {r.targeting.auth for r in auth} == {"name_zip", "any"}, "the way the customer authenticates stays"
    engine = ProposalEngine(domain, ProposerConfig(difficulty="plain"))
    wrong_item = FailurePattern(pattern_id="pat-1", category="wrong_item", description="wrong item", count=3)
    made = accepted(engine.propose(wrong_item, 4, random.Random(1)))
    assert made, "plain targeted tasks are generated and verified"
    assert all(c.recipe.endswith("-plain") and len(c.kinds) == 1 for c in made)


def test_a_pattern_naming_a_tool_gets_tasks_aimed_at_that_request(domain: RetailDomain) -> None:
    """A failed return gets return tasks, a product never looked up gets item swaps, not the whole family."""
    rng = random.Random(0)
    returns = [recipe_for("missing_write", rng, tool="return_delivered_order_items") for _ in range(30)]
    assert {r.kinds[0] for r in returns} == {"return"}
    family_wide = {recipe_for("missing_write", rng).kinds[0] for _ in range(60)}
    assert family_wide != {"return"}, "without a tool the family's recipes are all used"
    swaps = {recipe_for("missing_lookup", rng, tool="get_product_details").kinds for _ in range(30)}
    assert swaps == {("exchange",), ("modify_items",)}
    by_name = {recipe_for("missing_lookup", rng, tool="find_user_id_by_name_zip").targeting.auth for _ in range(30)}
    assert by_name == {"name_zip"}, "a name-and-zip lookup never made right is an authentication failure"
    payments = {recipe_for("wrong_payment", rng, tool="return_delivered_order_items").label for _ in range(30)}
    assert payments == {"gift-card-return", "paypal-return"}
    assert {recipe_for("protocol_error", rng, tool="unknown_tool").label for _ in range(60)} == {
        r.label for r in TARGETED["protocol_error"]
    }
    engine = ProposalEngine(domain, ProposerConfig())
    pattern = FailurePattern(
        pattern_id="missing_write:cancel_pending_order",
        category="missing_write",
        description="cancellations never made",
        count=3,
        subkey="cancel_pending_order",
    )
    made = accepted(engine.propose(pattern, 4, random.Random(2)))
    assert made, "aimed tasks are generated and verified"
    assert all(c.kinds[0] == "cancel" for c in made)
    unaimed = ProposalEngine(domain, ProposerConfig(aim_at_tool=False))
    recipes = {c.recipe for c in unaimed.propose(pattern, 12, random.Random(2))}
    assert not recipes <= {"three-requests"}, "unaimed: the whole family"


@pytest.mark.parametrize("kind", ["return", "exchange", "modify_items"])
def test_paypal_targeting_pays_and_refunds_through_paypal(
    domain: RetailDomain, engine: ProposalEngine, kind: str
) -> None:
    """Wrong payments are stressed with every kind of method: a PayPal recipe's write names a PayPal account."""
    recipe = Recipe(label=f"paypal-{kind}", kinds=(kind,), targeting=Targeting(paypal=True))  # type: ignore[arg-type]
    drafts = [generate(domain, engine.pool, recipe, random.Random(seed)) for seed in range(6)]
    made = [d for d in drafts if d is not None]
    assert made, f"some users fit {recipe.label}"
    for draft in made:
        write = next(a for a in draft.actions if "payment_method_id" in a.arguments)
        assert str(write.arguments["payment_method_id"]).startswith("paypal_")
