"""The bootstrap pipeline at a toy size: tokenizer, loss mask, SFT, cache, and an episode with the built policy."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import msgspec
import pytest

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("torch") is None or importlib.util.find_spec("tau2") is None,
        reason="needs the train and tau2 extras",
    ),
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

from sentinel_async.agents.clients import TokenPolicy  # noqa: E402
from sentinel_async.agents.clients.token_client import SamplingParams, to_template_messages  # noqa: E402
from sentinel_async.agents.episode import EpisodeConfig, EpisodeRunner, Termination  # noqa: E402
from sentinel_async.agents.scripted import ScriptedUser, derive_user_script  # noqa: E402
from sentinel_async.bootstrap import (  # noqa: E402
    COMPACT_SYSTEM_PROMPT,
    Bootstrap,
    BootstrapConfig,
    DemoConfig,
    ModelConfig,
    SFTConfig,
    bootstrap_policy,
    cache,
    fingerprint,
    load_or_build,
)
from sentinel_async.bootstrap.config import FORMAT_VERSION  # noqa: E402
from sentinel_async.bootstrap.demos import (  # noqa: E402
    Sample,
    generate_demos,
    plan_demos,
    task_intents,
    window_samples,
)
from sentinel_async.bootstrap.model import build_model  # noqa: E402
from sentinel_async.bootstrap.sft import draw_seed, make_batches, train_sft  # noqa: E402
from sentinel_async.bootstrap.tokenizer import mask_runs, render_ids  # noqa: E402
from sentinel_async.messages import ChatMessage, ToolCall  # noqa: E402
from sentinel_async.prompt_view import OMITTED, ContextWindow, PromptView  # noqa: E402
from sentinel_async.tools.retail import RetailDomain  # noqa: E402
from sentinel_async.tools.retail.evaluation import Evaluator  # noqa: E402

TOY = BootstrapConfig(
    size="toy",
    tool_view="lines",
    window=ContextWindow(head=6, tail=6),
    vocab_size=600,
    digit_group=1,
    model=ModelConfig(hidden=32, layers=2, heads=4, kv_heads=2, intermediate=64, context=2048),
    demos=DemoConfig(episodes_per_task=1, max_tasks=3),
    sft=SFTConfig(max_steps=3, batch_tokens=4096, warmup_steps=1),
)


@pytest.fixture(scope="module")
def domain() -> RetailDomain:
    return RetailDomain()


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bootstrap-cache")


@pytest.fixture(scope="module")
def built(cache_dir: Path) -> Bootstrap:
    import torch

    torch.set_num_threads(1)
    return load_or_build(TOY, cache_dir=cache_dir, progress=False)


def conversation() -> list[ChatMessage]:
    call = ToolCall(id="c1", name="get_order_details", arguments={"order_id": "#W2378156"})
    return [
        ChatMessage(role="system", content="the long domain policy"),
        ChatMessage(role="assistant", content="Hi! How can I help you today?"),
        ChatMessage(role="user", content="Cancel order #W2378156, please."),
        ChatMessage(role="assistant", tool_calls=(call,)),
        ChatMessage(role="tool", content='{"order_id": "#W2378156", "status": "pending"}', tool_call_id="c1"),
        ChatMessage(role="assistant", content="Do you confirm (yes/no)?"),
        ChatMessage(role="user", content="Yes."),
    ]


def test_tokenizer_round_trips_retail_text_and_splits_digits(built: Bootstrap, domain: RetailDomain) -> None:
    tok = built.tokenizer
    order = next(iter(domain.orders.values()))
    for text in (order.model_dump_json(), json.dumps(domain.tool_schemas()[:3]), "My zip is 19122, order #W2378156."):
        assert tok.decode(tok.encode(text, add_special_tokens=False)) == text
    assert len(tok.tokenize("2378156")) == 7


def test_digit_groups_are_single_tokens_cut_from_the_left() -> None:
    from sentinel_async.bootstrap.tokenizer import train_tokenizer

    tok = train_tokenizer("order #W2378156 for item 9523456873 costs 53.48 dollars", vocab_size=1400, digit_group=3)
    assert tok.tokenize("2378156") == ["237", "815", "6"]
    assert tok.tokenize(" 9523456873") == ["Ġ", "952", "345", "687", "3"]  # a space before digits is its own
    assert all(len(tok.tokenize(f"{n:03d}")) == 1 for n in range(1000))
    text = '{"order_id": "#W2378156", "zip": "19122", "price": 53.48}'
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text
    with pytest.raises(ValueError, match="digit_group"):
        train_tokenizer("x", digit_group=5)


def test_chat_template_renders_compact_tools_calls_and_responses(built: Bootstrap, domain: RetailDomain) -> None:
    text = built.tokenizer.apply_chat_template(
        to_template_messages(conversation()), tools=domain.tool_schemas(), tokenize=False, add_generation_prompt=True
    )
    assert text.startswith("<|im_start|>system\n" + COMPACT_SYSTEM_PROMPT)
    assert "the long domain policy" not in text
    assert "\ncancel_pending_order(order_id, reason)\n" in text
    assert '<tool_call>\n{"name": "get_order_details", "arguments": {"order_id": "#W2378156"}}\n</tool_call>' in text
    assert "<|im_start|>user\n<tool_response>\n" in text
    assert text.endswith("<|im_start|>assistant\n")


def test_assistant_mask_covers_exactly_the_assistant_turns(built: Bootstrap, domain: RetailDomain) -> None:
    tok = built.tokenizer
    ids, mask = render_ids(tok, to_template_messages(conversation()), domain.tool_schemas())
    assert len(ids) == len(mask)
    masked = tok.decode([i for i, m in zip(ids, mask, strict=True) if m], skip_special_tokens=False)
    expected = (
        "Hi! How can I help you today?<|im_end|>"
        '<tool_call>\n{"name": "get_order_details", "arguments": {"order_id": "#W2378156"}}\n</tool_call><|im_end|>'
        "Do you confirm (yes/no)?<|im_end|>"
    )
    assert masked == expected
    unmasked = tok.decode([i for i, m in zip(ids, mask, strict=True) if not m], skip_special_tokens=False)
    assert "Cancel order" in unmasked
    assert "<tool_response>" in unmasked


def test_demo_mix_follows_intent_weights(domain: RetailDomain) -> None:
    tasks = domain.tasks("train")
    config = DemoConfig(episodes_per_task=4, intent_weights={"exchange": 0.0, "cancel": 0.5})
    jobs = plan_demos(tasks, domain, config)
    per_task: dict[str, int] = {}
    for job in jobs:
        per_task[job.task.id] = per_task.get(job.task.id, 0) + 1
    for task in tasks:
        kinds = task_intents(task, domain)
        count = per_task.get(task.id, 0)
        if "exchange" in kinds:
            assert count == 0
        elif "cancel" in kinds:
            assert count in (2,)
        else:
            assert count == 4
    assert len({job.seed for job in jobs}) == len(jobs)


def test_built_demos_are_recorded_in_the_manifest(built: Bootstrap) -> None:
    demos = built.manifest.demos
    assert demos.episodes >= 1
    assert demos.failed == 0
    assert 0 < demos.assistant_tokens < demos.tokens
    assert built.manifest.prompt_prefix_tokens < 1200
    assert built.manifest.parameters > 0


def test_sft_loss_falls(built: Bootstrap) -> None:
    import torch

    tok = built.tokenizer
    samples = [
        Sample(*render_ids(tok, to_template_messages(conversation()), None)),
        Sample(*render_ids(tok, to_template_messages(conversation()[:4]), None)),
    ]
    model = build_model(ModelConfig(hidden=32, layers=2, heads=4, kv_heads=2, intermediate=64), len(tok))
    torch.manual_seed(0)
    metrics = train_sft(model, samples, SFTConfig(lr=1e-2, max_steps=30, warmup_steps=2, bf16=False), progress=False)
    assert metrics.steps == 30
    assert metrics.loss_last < 0.5 * metrics.loss_first
    assert metrics.loss_tokens > 0
    assert not model.training


def test_slot_copy_exercises_say_values_then_ask_for_them_in_a_call(built: Bootstrap) -> None:
    import random

    from sentinel_async.bootstrap.slots import SlotCopy
    from sentinel_async.bootstrap.tokenizer import mask_runs

    tokenizer = built.tokenizer
    values = {"order_id": ["#W1000001", "#W2000002", "#W3000003"], "first_name": ["Ada", "Mei"], "zip": ["28236"]}
    filler = [tokenizer.encode("Thanks, I can help you with that today.", add_special_tokens=False)]
    slots = SlotCopy(tokenizer, values, filler, max_distractors=2, max_slots=3)
    slot_counts = set()
    for sample in slots.batch(random.Random(0), 30):
        runs = mask_runs(sample.mask)
        slot_counts.add(len(runs))
        call_start = runs[0][0]
        said = tokenizer.decode(sample.ids[:call_start])
        call = tokenizer.decode(sample.ids[call_start - 12 :])
        for start, end in runs:
            value = tokenizer.decode(sample.ids[start:end])
            kind = next(k for k, texts in values.items() if value in texts)
            assert f"is {value}." in said[: said.rindex("<tool_call>")], "each value was said before the call"
            assert f'"{kind}": "' in tokenizer.decode(sample.ids[start - 8 : start]), "at its own key"
        assert "<tool_call>" in call or "<tool_call>" in said
    assert slot_counts == {1, 2, 3}, "one to three values per exercise"


def test_hard_exercises_can_name_several_values_in_one_call_while_easy_ones_name_one(built: Bootstrap) -> None:
    import random

    from sentinel_async.bootstrap.slots import SlotCopy
    from sentinel_async.bootstrap.tokenizer import mask_runs

    values = {"first_name": ["Ada", "Mei"], "last_name": ["Kovacs", "Lopez"], "zip": ["28236", "80217"]}
    filler = [built.tokenizer.encode("Thanks, I can help you with that today.", add_special_tokens=False)]
    slots = SlotCopy(built.tokenizer, values, filler, hard_slots=3)
    easy = {len(mask_runs(s.mask)) for s in slots.batch(random.Random(0), 30)}
    hard = {len(mask_runs(s.mask)) for s in slots.batch(random.Random(0), 30, hard=True)}
    assert easy == {1}
    assert hard == {1, 2, 3}, "a name-and-zip lookup copies three values"


def test_near_distractors_share_a_prefix_and_the_call_copies_the_last_value_said(built: Bootstrap) -> None:
    import random
    import re

    from sentinel_async.bootstrap.slots import SlotCopy
    from sentinel_async.bootstrap.tokenizer import mask_runs

    tokenizer = built.tokenizer
    items = ["1234567890", "5555566666", "9081726354"]
    filler = [tokenizer.encode("Thanks, I can help you with that today.", add_special_tokens=False)]
    slots = SlotCopy(tokenizer, {"item_id": items}, filler, hard_distractors=3, near_distractors=1.0)
    near = 0
    for sample in slots.batch(random.Random(1), 40, hard=True):
        (start, end), *_ = mask_runs(sample.mask)
        copied = tokenizer.decode(sample.ids[start:end])
        said = re.findall(r"is (\d+)\.", tokenizer.decode(sample.ids[:start]))
        assert copied in items
        assert said[-1] == copied, "the call copies the value said last"
        for other in said[:-1]:
            assert other[0] == copied[0], "a near distractor shares a prefix"
            assert len(other) == len(copied)
            near += other != copied
    assert near > 20


def test_a_call_naming_several_values_is_valid_json_with_each_value_at_its_key(built: Bootstrap) -> None:
    import random

    from sentinel_async.bootstrap.slots import SlotCopy

    values = {"first_name": ["Ada", "Mei"], "last_name": ["Kovacs", "Lopez"], "zip": ["28236", "80217"]}
    filler = [built.tokenizer.encode("Thanks, I can help you with that today.", add_special_tokens=False)]
    slots = SlotCopy(built.tokenizer, values, filler, hard_slots=3)
    named = set()
    for sample in slots.batch(random.Random(2), 30, hard=True):
        text = built.tokenizer.decode(sample.ids)
        call = json.loads(text.rsplit("<tool_call>\n", 1)[1].removesuffix("\n</tool_call>"))
        for kind, value in call["arguments"].items():
            assert value in values[kind]
        named.add(len(call["arguments"]))
    assert 3 in named, "the shape a name-and-zip lookup has"


def test_every_kind_of_payment_method_is_named_at_payment_method_id_as_in_the_tools(built: Bootstrap) -> None:
    import random

    from sentinel_async.bootstrap.slots import RETAIL_SLOT_KEYS, SlotCopy, retail_slot_values

    values = retail_slot_values(RetailDomain().db)
    assert set(RETAIL_SLOT_KEYS) <= set(values)
    filler = [built.tokenizer.encode("Thanks, I can help you with that today.", add_special_tokens=False)]
    methods = {kind: values[kind][:3] for kind in RETAIL_SLOT_KEYS}
    slots = SlotCopy(built.tokenizer, methods, filler, keys=RETAIL_SLOT_KEYS, hard_slots=3)
    for sample in slots.batch(random.Random(4), 30, hard=True):
        text = built.tokenizer.decode(sample.ids)
        call = json.loads(text.rsplit("<tool_call>\n", 1)[1].removesuffix("\n</tool_call>"))
        assert list(call["arguments"]) == ["payment_method_id"], "one key, whose name does not tell the kind"
        assert any(call["arguments"]["payment_method_id"] in said for said in methods.values())


def test_kind_contests_say_the_same_digits_under_another_payment_kind_before_the_one_copied(built: Bootstrap) -> None:
    import random
    import re

    from sentinel_async.bootstrap.slots import RETAIL_SLOT_KEYS, SlotCopy, retail_slot_values
    from sentinel_async.bootstrap.tokenizer import mask_runs

    values = retail_slot_values(RetailDomain().db)
    methods = {kind: values[kind][:3] for kind in RETAIL_SLOT_KEYS}
    filler = [built.tokenizer.encode("Thanks, I can help you with that today.", add_special_tokens=False)]
    slots = SlotCopy(built.tokenizer, methods, filler, keys=RETAIL_SLOT_KEYS, kind_contest=1.0)
    contests = 0
    for sample in slots.batch(random.Random(5), 40, hard=True):
        (start, end), *_ = mask_runs(sample.mask)
        copied = built.tokenizer.decode(sample.ids[start:end])
        said = re.findall(
            r"my (credit card|paypal|gift card) is ((credit_card|paypal|gift_card)_\d+)\.",
            built.tokenizer.decode(sample.ids[:start]),
        )
        assert said[-1][1] == copied, "the call copies the value said last"
        for word, _value, kind in said:
            assert word.replace(" ", "_") == kind, "each value is said as its own kind"
        for _, other, kind in said[:-1]:
            assert other.removeprefix(f"{kind}_") == copied.split("_")[-1], "the same digits"
            assert not copied.startswith(f"{kind}_"), "under another kind"
            contests += 1
    assert contests > 20
    plain = SlotCopy(built.tokenizer, methods, filler, keys=RETAIL_SLOT_KEYS)
    for sample in plain.batch(random.Random(5), 40, hard=True):
        text = built.tokenizer.decode(sample.ids)
        assert len({kind for kind in RETAIL_SLOT_KEYS if f"{kind}_" in text}) == 1, "without contests, one kind"


def test_recall_exercises_copy_the_product_id_on_the_line_of_the_named_item(built: Bootstrap) -> None:
    import random
    import re

    from sentinel_async.bootstrap.slots import SlotCopy, retail_listings
    from sentinel_async.bootstrap.tokenizer import mask_runs

    db = RetailDomain().db
    listings = retail_listings(db)
    assert listings
    assert all(len(rows) >= 2 for rows in listings)
    ordered = {(item.item_id, item.product_id) for order in db.orders.values() for item in order.items}
    assert all((row.item_id, row.product_id) in ordered for rows in listings for row in rows)
    filler = [built.tokenizer.encode("Thanks, I can help you with that today.", add_special_tokens=False)]
    slots = SlotCopy(built.tokenizer, {"zip": ["28236"]}, filler, listings=listings, recall_share=1.0)
    decoys = 0
    for sample in slots.batch(random.Random(3), 40, hard=True):
        text = built.tokenizer.decode(sample.ids)
        lines = dict(re.findall(r"item_id (\d+), product_id (\d+), price", text))
        description, named = re.findall(r"The item is (.*), item id (\d+)\.", text)[0]
        copied = [built.tokenizer.decode(sample.ids[a:b]) for a, b in mask_runs(sample.mask)]
        assert copied == [named, lines[named], lines[named]], "item id, then the product id on its line, twice"
        call = json.loads(text.rsplit("<tool_call>\n", 1)[1].removesuffix("\n</tool_call>"))
        assert call == {"name": "get_product_details", "arguments": {"product_id": lines[named]}}
        twins = [i for i in lines if i != named and f"{description} item_id {i}," in text]
        assert all(i[0] == named[0] for i in twins), "a decoy line: the same words, an item id with its prefix"
        decoys += bool(twins)
    assert 10 < decoys < 30, "about half the listings hold a decoy (near_distractors 0.5)"
    assert all("product_id" not in built.tokenizer.decode(s.ids) for s in slots.batch(random.Random(0), 10))
    with pytest.raises(ValueError, match="listings"):
        SlotCopy(built.tokenizer, {"zip": ["28236"]}, filler, recall_share=0.5)


def test_hard_slot_exercises_drill_long_values_more(built: Bootstrap) -> None:
    import random

    from sentinel_async.bootstrap.slots import SlotCopy

    filler = [built.tokenizer.encode("Thanks, I can help.", add_special_tokens=False)]
    values = {"zip": ["28236"], "item_id": ["1234567890123456"]}
    slots = SlotCopy(built.tokenizer, values, filler)
    rng = random.Random(0)
    kinds = [slots.tokenizer.decode(s.ids).count("1234567890123456") > 0 for s in slots.batch(rng, 200, hard=True)]
    assert sum(kinds) > 120, "the longer kind is drilled more often"


def test_sft_with_slot_steps_trains_on_them_first(built: Bootstrap) -> None:
    import random

    from sentinel_async.bootstrap.slots import SlotCopy

    model = build_model(TOY.model, len(built.tokenizer), eos_token_id=built.tokenizer.eos_token_id)
    samples = [Sample(list(range(3, 203)), [0] * 100 + [1] * 100)] * 4
    slots = SlotCopy(built.tokenizer, {"order_id": ["#W1000001", "#W2000002"]}, [list(range(3, 60))])
    config = SFTConfig(max_steps=6, batch_tokens=1024, warmup_steps=1, slot_steps=4, slot_batch=4)
    metrics = train_sft(model, samples, config, progress=False, slots=slots)
    assert metrics.steps == 6
    assert metrics.slot_steps == 4
    assert slots.batch(random.Random(0), 1)[0].mask.count(1) > 0
    with pytest.raises(ValueError, match="slot"):
        train_sft(model, samples, config, progress=False)


class _Constant:
    """A stand-in model whose greedy choice is `token` at every position."""

    def __init__(self, token: int, vocab: int) -> None:
        import torch

        self.training = True
        self.row = torch.full((vocab,), -1.0)
        self.row[token] = 1.0

    def __call__(self, input_ids: Any) -> Any:
        from types import SimpleNamespace

        return SimpleNamespace(logits=self.row.expand(*input_ids.shape, -1))

    def eval(self) -> None:
        self.training = False

    def train(self, mode: bool = True) -> None:
        self.training = mode

    def parameters(self) -> list[Any]:
        return []


def test_the_copy_check_scores_each_kind_on_its_own(built: Bootstrap) -> None:
    from sentinel_async.bootstrap.copy_check import CopyCheck
    from sentinel_async.bootstrap.slots import SlotCopy

    tokenizer = built.tokenizer
    seven = tokenizer.encode("7", add_special_tokens=False)
    assert len(seven) == 1
    slots = SlotCopy(tokenizer, {"zip": ["7"], "order_id": ["#W1000001"]}, [list(range(3, 60))])
    writes_seven = _Constant(seven[0], len(tokenizer))
    check = CopyCheck(slots, ["zip", "order_id"], size=8)
    assert check.rates(writes_seven) == {"zip": 1.0, "order_id": 0.0}
    assert writes_seven.training, "left in the mode it was in"
    assert not check.passes(writes_seven, 0.5)
    assert CopyCheck(slots, ["zip"], size=8).passes(writes_seven, 0.5)
    with pytest.raises(ValueError, match="first_name"):
        CopyCheck(slots, ["first_name"])


def test_a_kind_that_fails_the_copy_check_is_drilled_until_it_passes(built: Bootstrap) -> None:
    from sentinel_async.bootstrap.slots import SlotCopy

    tokenizer = built.tokenizer
    samples = [Sample(list(range(3, 203)), [0] * 100 + [1] * 100)] * 4
    slots = SlotCopy(tokenizer, {"zip": ["28236"], "order_id": ["#W1000001", "#W2000002"]}, [list(range(3, 60))])
    config = SFTConfig(max_steps=10, batch_tokens=1024, warmup_steps=1, slot_steps=2, slot_batch=2)
    watched = msgspec.structs.replace(
        config, slot_check_kinds=("order_id",), slot_check_size=4, slot_watch_every=2, slot_remedial_fraction=1.0
    )

    def train(sft: SFTConfig) -> Any:
        model = build_model(TOY.model, len(tokenizer), eos_token_id=tokenizer.eos_token_id)
        return train_sft(model, samples, sft, progress=False, slots=slots)

    plain, drilled = train(config), train(watched)
    assert (plain.slot_steps, plain.copy_checks, plain.copy_rates) == (2, [], {})
    assert [c.step for c in drilled.copy_checks] == [2, 4, 6, 8], "checked every 2 steps after the slot phase"
    assert all(c.rates["order_id"] < 0.5 for c in drilled.copy_checks), "a toy model copies nothing"
    assert (drilled.slot_steps, drilled.remedial_steps) == (10, 8), "every step drills the failing kind"
    assert set(drilled.copy_rates) == {"order_id"}


def test_focused_exercises_name_the_failing_kind(built: Bootstrap) -> None:
    import random

    from sentinel_async.bootstrap.slots import SlotCopy

    values = {"zip": ["28236"], "order_id": ["#W1000001"], "first_name": ["Mei"]}
    slots = SlotCopy(built.tokenizer, values, [list(range(3, 60))])
    batch = slots.batch(random.Random(0), 400, focus=["zip"])
    calls = [built.tokenizer.decode(s.ids).rsplit("<tool_call>", 1)[-1] for s in batch]
    share = sum('"zip"' in call for call in calls) / len(calls)
    assert 0.55 < share < 0.8, f"half of them, and a third of the rest: {share}"


def _never_learnt(learnt_below: float = 1e-9) -> SFTConfig:
    """Slot-only steps whose wait for copying (20 easy steps under `learnt_below`) is given 22 steps per draw."""
    return SFTConfig(
        max_steps=34,
        batch_tokens=1024,
        warmup_steps=1,
        slot_steps=10,
        slot_hard_from=20,
        slot_learnt_below=learnt_below,
        slot_redraws=2,
        slot_redraw_after=22,
        slot_batch=2,
    )


def test_a_build_that_does_not_learn_to_copy_in_time_draws_a_new_model(built: Bootstrap) -> None:
    from sentinel_async.bootstrap.slots import SlotCopy

    tokenizer = built.tokenizer
    model = build_model(TOY.model, len(tokenizer), eos_token_id=tokenizer.eos_token_id)
    samples = [Sample(list(range(3, 203)), [0] * 100 + [1] * 100)] * 4
    slots = SlotCopy(tokenizer, {"order_id": ["#W1000001", "#W2000002"]}, [list(range(3, 60))])
    drawn: list[int] = []

    def redraw(draw: int) -> None:
        drawn.append(draw)
        fresh = build_model(msgspec.structs.replace(TOY.model, seed=draw_seed(0, draw)), len(tokenizer))
        model.load_state_dict(fresh.state_dict())

    metrics = train_sft(model, samples, _never_learnt(), progress=False, slots=slots, redraw=redraw)
    assert drawn == [1, 2], "two more models drawn, then the last one kept"
    assert (metrics.slot_draws, metrics.redrawn_steps) == (3, 44)
    assert metrics.steps == 34, "the kept draw trains the whole step budget from step 0"
    assert metrics.slot_waited_out, "the last draw keeps the usual wait and says it ran out"
    assert metrics.slot_hard_from == 30

    learnt = train_sft(model, samples, _never_learnt(learnt_below=100.0), progress=False, slots=slots, redraw=redraw)
    assert drawn == [1, 2], "a draw that learns in time is kept"
    assert (learnt.slot_draws, learnt.redrawn_steps, learnt.slot_learnt_at) == (1, 0, 20)
    with pytest.raises(ValueError, match="redraw"):
        train_sft(model, samples, _never_learnt(), progress=False, slots=slots)


def test_a_build_records_its_draws_in_the_manifest(tmp_path: Path) -> None:
    sft = msgspec.structs.replace(_never_learnt(), slot_redraws=1, max_steps=26)
    result = load_or_build(msgspec.structs.replace(TOY, sft=sft), cache_dir=tmp_path, progress=False)
    assert (result.manifest.sft.slot_draws, result.manifest.sft.redrawn_steps) == (2, 22)
    assert result.manifest.sft.steps == 26


def test_make_batches_respects_the_token_budget() -> None:
    lengths = [100, 900, 300, 50, 2000, 400]
    batches = make_batches(lengths, 1000)
    assert sorted(i for b in batches for i in b) == list(range(6))
    for batch in batches:
        assert len(batch) == 1 or max(lengths[i] for i in batch) * len(batch) <= 1000


def test_cache_is_reused_and_rebuilt_when_the_config_changes(
    built: Bootstrap, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert built.path == cache_dir / fingerprint(TOY)
    assert (built.path / "model.safetensors").exists()
    calls: list[Path] = []
    real_build = cache.build

    def counting_build(config: BootstrapConfig, out: Path, **kwargs: Any) -> Any:
        calls.append(out)
        return real_build(config, out, **kwargs)

    monkeypatch.setattr(cache, "build", counting_build)
    again = load_or_build(TOY, cache_dir=cache_dir, progress=False)
    assert calls == []
    assert again.manifest == built.manifest
    changed = msgspec.structs.replace(TOY, sft=msgspec.structs.replace(TOY.sft, max_steps=2))
    other = load_or_build(changed, cache_dir=cache_dir, progress=False)
    assert len(calls) == 1
    assert other.path != built.path
    assert other.manifest.sft.steps == 2


def test_a_build_made_before_a_default_field_existed_is_reused(
    built: Bootstrap, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A configuration that gained a field (at its default, so the same computation) has a new fingerprint; the
    build recorded without the field is loaded instead of rebuilt, but not one of another format version or
    another configuration."""
    assert built.manifest.format_version == FORMAT_VERSION
    root = tmp_path / "cache"
    old = root / "0123456789abcdef"
    shutil.copytree(built.path, old)
    raw = msgspec.json.decode((old / cache.MANIFEST).read_bytes())
    del raw["config"]["permute_names"]  # recorded before the field existed (its default, False, is TOY's)
    (old / cache.MANIFEST).write_bytes(msgspec.json.encode(raw))
    calls: list[Path] = []

    def counting_build(config: BootstrapConfig, out: Path, **kwargs: Any) -> Any:
        calls.append(out)
        raise RuntimeError("rebuilt")

    monkeypatch.setattr(cache, "build", counting_build)
    reused = load_or_build(TOY, cache_dir=root, progress=False)
    assert (reused.path, calls) == (old, [])
    assert reused.manifest.config == TOY
    changed = msgspec.structs.replace(TOY, permute_names=True)
    with pytest.raises(RuntimeError, match="rebuilt"):
        load_or_build(changed, cache_dir=root, progress=False)
    raw["format_version"] = FORMAT_VERSION - 1
    (old / cache.MANIFEST).write_bytes(msgspec.json.encode(raw))
    with pytest.raises(RuntimeError, match="rebuilt"):
        load_or_build(TOY, cache_dir=root, progress=False)
    assert len(calls) == 2


def test_a_build_is_reproducible_from_its_configuration(built: Bootstrap, tmp_path: Path) -> None:
    """Seeds are fixed and the schedule follows steps, so building again elsewhere gives the same weights."""
    import torch

    again = load_or_build(TOY, cache_dir=tmp_path, progress=False)
    assert again.tokenizer.get_vocab() == built.tokenizer.get_vocab()
    assert again.manifest.sft.losses == built.manifest.sft.losses
    theirs = dict(again.model.named_parameters())
    for name, weight in built.model.named_parameters():
        assert torch.equal(weight, theirs[name]), name


def test_cache_root_honours_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SENTINEL_CACHE", str(tmp_path))
    assert cache.cache_root() == tmp_path / "bootstrap"
    assert cache.cache_root(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv("SENTINEL_CACHE")
    assert cache.cache_root().parts[-2:] == ("sentinel-async", "bootstrap")


async def test_built_policy_plays_an_episode(built: Bootstrap, domain: RetailDomain) -> None:
    task = domain.tasks("test")[0]
    policy = bootstrap_policy(built, sampling=SamplingParams(max_tokens=12, temperature=1.0))
    runner = EpisodeRunner(domain=domain, config=EpisodeConfig(max_steps=8), evaluate=Evaluator(domain).evaluate)
    user = ScriptedUser(derive_user_script(task, domain), seed=0)
    outcome = await runner.run(task=task, policy=policy, user=user, episode_id="boot-0", seed=0)
    assert outcome.termination in {t.value for t in Termination}
    assert outcome.reward is not None
    assistant = [m for m in outcome.messages[2:] if m.role == "assistant"]
    assert assistant
    assert outcome.messages[0].role == "system"


def test_the_policy_reads_tool_results_through_the_configured_view(built: Bootstrap, domain: RetailDomain) -> None:
    policy = bootstrap_policy(built)
    text = built.tokenizer.decode(policy.render_prompt(conversation(), domain.tool_schemas()))
    assert "<tool_response>\norder_id: #W2378156\nstatus: pending\n</tool_response>" in text
    assert '"status": "pending"' not in text
    raw = msgspec.structs.replace(built.manifest, config=msgspec.structs.replace(TOY, tool_view="raw", window=None))
    assert Bootstrap(built.path, built.tokenizer, built.model, raw).prompt_view == PromptView()


async def test_window_samples_train_each_turn_on_the_prompt_the_policy_is_shown(
    built: Bootstrap, domain: RetailDomain
) -> None:
    task = next(t for t in domain.tasks("train") if "exchange" in task_intents(t, domain))
    demos = await generate_demos(domain, DemoConfig(episodes_per_task=1, intent_weights={}), extra_tasks=[task])
    conversation = demos.conversations[-1]
    window = ContextWindow(head=6, tail=4)
    tools = domain.tool_schemas()
    policy = TokenPolicy(built.tokenizer, generator=None, view=PromptView(window=window))  # type: ignore[arg-type]
    samples = window_samples(built.tokenizer, conversation, window, tools)
    assistant = [j for j, m in enumerate(conversation) if m.role == "assistant"]
    late = [j for j in assistant if j > 1 + 6 + 4]
    assert late, "the conversation is longer than the window"
    assert len(samples) == 1 + len(late)
    first = samples[0]
    assert sum(1 for _ in mask_runs(first.mask)) == len(assistant) - len(late)
    for j, sample in zip(late, samples[1:], strict=True):
        ((start, end),) = mask_runs(sample.mask)
        prompt = policy.render_prompt(conversation[:j], tools)
        assert sample.ids[:start] == prompt, "the prompt trained on is the prompt the policy renders"
        assert OMITTED in built.tokenizer.decode(prompt)
        assert end == len(sample.ids) - 1, "the turn ends the sample (then the newline after <|im_end|>)"


def test_named_sizes_and_the_cli_summary(built: Bootstrap) -> None:
    from sentinel_async.bootstrap import bootstrap_config
    from sentinel_async.cli.bootstrap_command import format_manifest
    from sentinel_async.errors import SentinelError

    tiny = bootstrap_config("tiny", minutes=1.5)
    assert tiny.sft.max_minutes == 1.5
    assert fingerprint(tiny) != fingerprint(bootstrap_config("tiny"))
    assert bootstrap_config("tiny", steps=40).sft.max_steps == 40
    with pytest.raises(SentinelError, match="step budget"):
        bootstrap_config("tiny", steps=0)
    assert bootstrap_config("small").model.hidden == 256
    with pytest.raises(SentinelError, match="unknown bootstrap size"):
        bootstrap_config("huge")
    seeded = bootstrap_config("tiny", seed=3)
    assert (seeded.model.seed, seeded.sft.seed) == (3, 3)
    assert fingerprint(seeded) != fingerprint(bootstrap_config("tiny"))
    text = format_manifest(built.manifest, built.path)
    assert str(built.path) in text
    assert "parameters" in text
    assert "WARNING" not in text
    manifest = built.manifest
    waited = msgspec.structs.replace(manifest, sft=msgspec.structs.replace(manifest.sft, slot_waited_out=True))
    assert "WARNING: copying was not learnt" in format_manifest(waited, built.path)
    assert "--seed" in format_manifest(waited, built.path)
    learnt = msgspec.structs.replace(manifest, sft=msgspec.structs.replace(manifest.sft, slot_learnt_at=660))
    assert "copying learnt at step 660" in format_manifest(learnt, built.path)
    assert "drawn" not in format_manifest(learnt, built.path)
    redrawn = msgspec.structs.replace(learnt.sft, slot_draws=3, redrawn_steps=2000, redrawn_seconds=480.0)
    text = format_manifest(msgspec.structs.replace(learnt, sft=redrawn), built.path)
    checked = msgspec.structs.replace(learnt.sft, copy_rates={"first_name": 0.97, "last_name": 0.5}, remedial_steps=300)
    checked_text = format_manifest(msgspec.structs.replace(learnt, sft=checked), built.path)
    assert "copy check after training: first_name 0.97, last_name 0.50" in checked_text
    assert "300 steps drilled a kind that failed a check" in checked_text
    assert "model 3 drawn: the 2 before it did not learn to copy in time (2000 steps, 480 s discarded)" in text


def test_a_step_bound_build_cut_short_by_its_time_cap_says_so_and_how_to_run_every_step(built: Bootstrap) -> None:
    """On a slower machine the time cap can end a step-bound build early: that build is not the measured one."""
    from sentinel_async.cli.bootstrap_command import format_manifest

    manifest = built.manifest
    max_steps = manifest.config.sft.max_steps
    cut = msgspec.structs.replace(manifest.sft, stopped_by="time", steps=max_steps - 1)
    text = format_manifest(msgspec.structs.replace(manifest, sft=cut), built.path)
    assert (
        f"WARNING: the {manifest.config.sft.max_minutes:g}-minute cap stopped training at step {max_steps - 1}" in text
    )
    assert f"sentinel bootstrap --size {manifest.config.size} --minutes " in text
    assert "policy.build_minutes=" in text
    finished = msgspec.structs.replace(manifest.sft, stopped_by="steps", steps=max_steps)
    assert "WARNING" not in format_manifest(msgspec.structs.replace(manifest, sft=finished), built.path)
    time_bound = msgspec.structs.replace(
        manifest.config, sft=msgspec.structs.replace(manifest.config.sft, max_steps=100_000)
    )
    by_design = msgspec.structs.replace(manifest, config=time_bound, sft=cut)
    assert "WARNING" not in format_manifest(by_design, built.path)


def test_eval_and_runs_load_the_build_of_a_seed_step_budget_and_time_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    """A build made with `sentinel bootstrap --seed/--steps/--minutes` is the one `sentinel eval
    --build-seed/--build-steps/--build-minutes` and a run's `policy.build_seed/build_steps/build_minutes` load, not
    the size's default build."""
    import sentinel_async.bootstrap as package
    from sentinel_async.bootstrap import bootstrap_config
    from sentinel_async.cli import build_parser
    from sentinel_async.cli.eval_command import _bootstrap_policy, config_from_args
    from sentinel_async.policies import load_policy
    from sentinel_async.run_config import PolicyConfig

    class LoadedError(Exception):
        pass

    requested: list[str] = []

    def capture(config: BootstrapConfig, **kwargs: Any) -> Any:
        requested.append(fingerprint(config))
        raise LoadedError

    monkeypatch.setattr(cache, "load_or_build", capture)
    monkeypatch.setattr(package, "load_or_build", capture)
    flags = ["--build-seed", "1", "--build-steps", "3600", "--build-minutes", "60"]
    args = build_parser().parse_args(["eval", "--policy", "bootstrap", *flags])
    with pytest.raises(LoadedError):
        _bootstrap_policy(config_from_args(args, "eval"))
    with pytest.raises(LoadedError):
        load_policy(PolicyConfig(build_seed=1, build_steps=3600, build_minutes=60.0), seed=0)
    with pytest.raises(LoadedError):
        load_policy(PolicyConfig(), seed=0)
    wanted = fingerprint(bootstrap_config("tiny", seed=1, steps=3600, minutes=60.0))
    assert wanted != fingerprint(bootstrap_config("tiny", seed=1, steps=3600))
    assert requested == [wanted, wanted, fingerprint(bootstrap_config("tiny"))]


def test_a_name_is_the_same_tokens_in_a_sentence_and_in_a_tool_call(built: Bootstrap) -> None:
    encode = built.tokenizer.encode
    name = encode("Kovacs", add_special_tokens=False)
    sentence = encode("my name is Mei Kovacs and", add_special_tokens=False)
    call = encode('{"last_name": "Kovacs"}', add_special_tokens=False)
    for ids in (sentence, call):
        assert any(ids[i : i + len(name)] == name for i in range(len(ids))), "copying a name is an identity copy"
    assert built.tokenizer.decode(sentence) == "my name is Mei Kovacs and"


async def test_turn_accuracy_counts_every_turn_with_or_without_a_window(built: Bootstrap, domain: RetailDomain) -> None:
    from sentinel_async.bootstrap.probe import turn_accuracy

    demos = await generate_demos(domain, DemoConfig(episodes_per_task=1, max_tasks=2, intent_weights={}))
    tools = domain.tool_schemas()
    whole = turn_accuracy(built.model, built.tokenizer, demos.conversations, tools)
    windowed = turn_accuracy(built.model, built.tokenizer, demos.conversations, tools, built.prompt_view)
    turns = sum(1 for c in demos.conversations for m in c if m.role == "assistant")
    assert whole.turns == windowed.turns == turns
    assert {k: n for k, (n, _) in whole.by_kind.items()} == {k: n for k, (n, _) in windowed.by_kind.items()}
    assert 0.0 <= windowed.exact <= 1.0
    assert len(windowed.missed) == len(demos.conversations)
    assert sum(map(len, windowed.missed)) == round(turns * (1 - windowed.exact))
    assert sum(windowed.calls_from_success().values()) == len(demos.conversations)


async def test_turn_accuracy_checks_the_kind_of_every_payment_method_an_assistant_turn_writes(
    built: Bootstrap, domain: RetailDomain
) -> None:
    import re

    from sentinel_async.bootstrap.probe import turn_accuracy

    demos = await generate_demos(domain, DemoConfig(episodes_per_task=1, max_tasks=8, intent_weights={}))
    written = " ".join(
        m.content + " ".join(json.dumps(c.arguments) for c in m.tool_calls)
        for conversation in demos.conversations
        for m in conversation
        if m.role == "assistant"
    )
    payments = len(re.findall(r"(credit_card|paypal|gift_card)_\d", written))
    assert payments > 3
    accuracy = turn_accuracy(
        built.model, built.tokenizer, demos.conversations, domain.tool_schemas(), built.prompt_view
    )
    right, of = accuracy.payment_kinds
    assert of == payments, "every payment method an assistant writes, once"
    assert 0 <= right <= of
    assert f"payment kinds {right} of {of}" in accuracy.format()


def test_a_build_can_copy_addresses(tmp_path: Path) -> None:
    """`copy_addresses` renames address words in the demonstrations and drills them in the exercises."""
    config = msgspec.structs.replace(
        TOY, copy_addresses=True, sft=msgspec.structs.replace(TOY.sft, slot_steps=2, slot_batch=4, max_steps=4)
    )
    result = load_or_build(config, cache_dir=tmp_path, progress=False)
    assert result.manifest.config.copy_addresses
    assert result.manifest.sft.slot_steps == 2
