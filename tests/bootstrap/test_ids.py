"""Guides' ids and payment kinds renamed as text (`rollout.rename_guide_ids`, `rollout.rename_guide_payment_kinds`):
a renamed conversation still only writes ids it was shown, and none of the task's own ids are left to memorise.
A bootstrap's demonstrations with payment kinds permuted (`BootstrapConfig.permute_payment_kinds`) stay coherent."""

from __future__ import annotations

import importlib.util
import re

import pytest

from sentinel_async.bootstrap.config import BootstrapConfig
from sentinel_async.bootstrap.ids import PAYMENT_KINDS, IdRenaming, PaymentKindRenaming, permute_payment_kinds
from sentinel_async.bootstrap.names import ChainedRenaming, Renaming, TextRenaming
from sentinel_async.messages import ChatMessage, ToolCall

PAYMENT_KIND = re.compile(r"(credit_card|paypal|gift_card)_\d")
PAYMENT_ID = re.compile(r"(?:credit_card|paypal|gift_card)_\d+")
CUSTOMER_NAMES_METHOD = re.compile(r"my (PayPal account|gift card|\w+ card ending in \d{4}) \((\w+?)_\d")
DIGIT_RUNS = re.compile(r"(?<![\d.])\d{4,}")  # not the decimals of an amount


def test_ids_are_renamed_alike_everywhere_and_amounts_are_not() -> None:
    renaming = IdRenaming(seed=3)
    text = (
        "Order #W2378156 (item 1151293680) paid with paypal_7644869 by yusuf_rossi_9620, zip 19122: "
        "refund 1234.56 of 54.04 to credit_card_0446831, 2 items, order #W2378156."
    )
    renamed = renaming.text(text)
    order = renaming.digits("2378156")
    assert renamed == (
        f"Order #W{order} (item {renaming.digits('1151293680')}) paid with paypal_{renaming.digits('7644869')} by "
        f"yusuf_rossi_{renaming.digits('9620')}, zip {renaming.digits('19122')}: refund 1234.56 of 54.04 to "
        f"credit_card_{renaming.digits('0446831')}, 2 items, order #W{order}."
    )
    for digits in ("2378156", "1151293680", "7644869", "9620", "19122", "0446831"):
        new = renaming.digits(digits)
        assert new != digits
        assert len(new) == len(digits)
        assert new.isdigit()
        assert (new[0] == "0") == (digits[0] == "0"), "a leading zero stays, and no id gains one"
    assert IdRenaming(seed=3).text(text) == renamed, "the map is the seed's, whatever order ids are met in"
    assert IdRenaming(seed=4).text(text) != renamed


def test_a_message_is_renamed_in_its_text_and_its_tool_calls_arguments_with_names_too() -> None:
    renaming = ChainedRenaming(Renaming({"yusuf": "mei", "rossi": "kovacs"}), IdRenaming(seed=0))
    call = ToolCall(
        id="c1",
        name="return_delivered_order_items",
        arguments={"order_id": "#W2378156", "item_ids": ["1151293680"], "payment_method_id": "paypal_7644869"},
    )
    message = ChatMessage(role="assistant", content="For yusuf_rossi_9620:", tool_calls=(call,))
    renamed = renaming.message(message)
    ids = IdRenaming(seed=0)
    assert renamed.content == f"For mei_kovacs_{ids.digits('9620')}:"
    assert renamed.tool_calls[0].arguments == {
        "order_id": f"#W{ids.digits('2378156')}",
        "item_ids": [ids.digits("1151293680")],
        "payment_method_id": f"paypal_{ids.digits('7644869')}",
    }
    assert renamed.tool_calls[0].id == "c1"
    assert renamed.tool_calls[0].name == call.name


def test_payment_kinds_are_permuted_in_ids_and_sources_but_not_in_words() -> None:
    renaming = PaymentKindRenaming(seed=1)
    assert sorted(renaming.mapping) == sorted(renaming.mapping.values()) == sorted(PAYMENT_KINDS)
    paypal, card, gift = (renaming.mapping[kind] for kind in ("paypal", "credit_card", "gift_card"))
    text = (
        'Please use my PayPal account (paypal_7644869). {"payment_methods": {"paypal_7644869": {"source": "paypal", '
        '"id": "paypal_7644869"}, "credit_card_4466831": {"source":"credit_card", "brand": "visa"}}} '
        "A gift_card_ is refunded at once to gift_card_0446831.\n"
        "  - source gift_card, balance 5.0, id gift_card_0446831"
        "\n  - source paypal, id paypal_7644869\nresource paypal"
    )
    assert renaming.text(text) == (
        f'Please use my PayPal account ({paypal}_7644869). {{"payment_methods": {{"{paypal}_7644869": {{"source": '
        f'"{paypal}", "id": "{paypal}_7644869"}}, "{card}_4466831": {{"source":"{card}", "brand": "visa"}}}}}} '
        f"A gift_card_ is refunded at once to {gift}_0446831.\n  - source {gift}, balance 5.0, id {gift}_0446831"
        f"\n  - source {paypal}, id {paypal}_7644869\nresource paypal"
    )
    drawn = {tuple(PaymentKindRenaming(seed).mapping.values()) for seed in range(40)}
    assert len(drawn) == 6, "every permutation is drawn, the identity too"


def test_said_kinds_name_each_method_the_customer_names_by_its_new_kind() -> None:
    text = (
        "Please use my PayPal account (paypal_7644869). Or my gift card (gift_card_0446831), or my Visa card "
        "ending in 1234 (credit_card_4466831). Refund to paypal_7644869."
    )
    for seed in range(12):
        words = PaymentKindRenaming(seed, say_kinds=True)
        renamed = words.text(text)
        assert PAYMENT_ID.findall(renamed) == PAYMENT_ID.findall(PaymentKindRenaming(seed).text(text)), "the same ids"
        said = CUSTOMER_NAMES_METHOD.findall(renamed)
        assert sorted(kind for _, kind in said) == sorted(PAYMENT_KINDS)
        for label, kind in said:
            expected = {"paypal": "PayPal account", "gift_card": "gift card"}.get(kind)
            assert label == expected if expected else re.fullmatch(r"[A-Z][a-z]+ card ending in \d{4}", label)
        assert renamed.endswith(f"Refund to {words.mapping['paypal']}_7644869."), "ids not said by name: only the id"
        if words.mapping["credit_card"] == "credit_card":
            assert "Visa card ending in 1234 (credit_card_4466831)" in renamed, "a kind that stays keeps its words"
    with pytest.raises(ValueError, match="permute_payment_kinds"):
        BootstrapConfig(say_payment_kinds=True)


def test_a_given_kind_map_moves_ids_or_with_its_inverse_only_the_customers_words() -> None:
    cycle = {"credit_card": "paypal", "paypal": "gift_card", "gift_card": "credit_card"}
    back = {new: old for old, new in cycle.items()}
    text = "Please use my PayPal account (paypal_7644869).\n  - source paypal, id paypal_7644869"
    assert PaymentKindRenaming(0, mapping=cycle).text(text) == text.replace("paypal", "gift_card")
    words = ChainedRenaming(PaymentKindRenaming(0, mapping=cycle, say_kinds=True), PaymentKindRenaming(0, mapping=back))
    assert words.text(text) == text.replace("PayPal account", "gift card")
    with pytest.raises(ValueError, match="not a permutation"):
        PaymentKindRenaming(0, mapping={"paypal": "gift_card", "gift_card": "gift_card", "credit_card": "paypal"})


@pytest.mark.skipif(importlib.util.find_spec("tau2") is None, reason="needs the tau2 extra")
@pytest.mark.parametrize("payment_kinds", [False, True])
def test_a_renamed_expert_episode_writes_only_ids_it_was_shown_and_none_of_the_tasks(payment_kinds: bool) -> None:
    from sentinel_async.tools.retail import RetailDomain
    from tests.agents.expert_episodes import play_all, strings, visible

    domain = RetailDomain()
    played = play_all(domain, domain.tasks("train")[0:30:3])

    copied = payments = 0
    for index, outcome in zip(range(0, 30, 3), played, strict=True):
        assert outcome.reward is not None
        assert outcome.reward.reward == 1.0
        original = outcome.messages[1:]  # not the system prompt
        renaming: TextRenaming = IdRenaming(seed=index)
        if payment_kinds:
            renaming = ChainedRenaming(renaming, PaymentKindRenaming(seed=index))
            kinds = PaymentKindRenaming(seed=index).mapping
            expected = [kinds[kind] for kind in PAYMENT_KIND.findall(visible(original))]
        renamed = renaming.conversation(original)
        if payment_kinds:
            assert PAYMENT_KIND.findall(visible(renamed)) == expected
            payments += len(expected)
        for position, message in enumerate(renamed):
            for call in message.tool_calls:
                if call.name == "transfer_to_human_agents":
                    continue
                before = visible(renamed[:position])
                assert all(value in before for value in strings(call.arguments)), (index, call)
                copied += sum(bool(DIGIT_RUNS.search(value)) for value in strings(call.arguments))
        left = set(DIGIT_RUNS.findall(visible(original))) & set(DIGIT_RUNS.findall(visible(renamed)))
        assert not {digits for digits in left if len(digits) >= 7}, "no order, item or payment id survives"
    assert copied > 20
    assert payments > 20 or not payment_kinds


@pytest.mark.skipif(importlib.util.find_spec("tau2") is None, reason="needs the tau2 extra")
def test_demonstrations_with_permuted_payment_kinds_stay_coherent_in_the_lines_view() -> None:
    from sentinel_async.prompt_view import view_tool_results
    from sentinel_async.tools.retail import RetailDomain
    from sentinel_async.tools.retail.views import retail_lines
    from tests.agents.expert_episodes import play_all, strings, visible

    domain = RetailDomain()
    played = play_all(domain, domain.tasks("train")[1:60:3])
    viewed = [view_tool_results(outcome.messages[1:], retail_lines) for outcome in played]
    permuted = permute_payment_kinds(viewed, seed=7)
    assert permute_payment_kinds(viewed, seed=7) == permuted, "the permutations are the seed's"

    maps: set[tuple[tuple[str, str], ...]] = set()
    sources = payments = 0
    for original, renamed in zip(viewed, permuted, strict=True):
        kinds_before, kinds_after = PAYMENT_KIND.findall(visible(original)), PAYMENT_KIND.findall(visible(renamed))
        assert len(kinds_before) == len(kinds_after)
        payments += len(kinds_after)
        mapping = dict(zip(kinds_before, kinds_after, strict=True))
        assert len(set(mapping.values())) == len(mapping), "one kind per kind, within a conversation"
        maps.add(tuple(sorted(mapping.items())))
        for line in re.findall(r"source (\w+), .*id (\w+)_\d+", visible(renamed)):
            assert line[0] == line[1], "a listed method's source and id agree"
            sources += 1
        for position, message in enumerate(renamed):
            for call in message.tool_calls:
                if call.name != "transfer_to_human_agents":
                    before = visible(renamed[:position])
                    assert all(value in before for value in strings(call.arguments)), call
    assert sources > 0
    assert payments > 20
    assert len(maps) > 3, "conversations get different permutations"

    said = permute_payment_kinds(viewed, seed=7, say_kinds=True)
    assert [PAYMENT_ID.findall(visible(c)) for c in said] == [PAYMENT_ID.findall(visible(c)) for c in permuted]
    named = 0
    for conversation in said:
        for message in conversation:
            if message.role == "user":
                for label, kind in CUSTOMER_NAMES_METHOD.findall(message.content or ""):
                    named += 1
                    expected = {"paypal": "PayPal account", "gift_card": "gift card"}.get(kind)
                    assert label == expected if expected else re.fullmatch(r"[A-Z][a-z]+ card ending in \d{4}", label)
    assert named > 10, "the customers name their payment methods"
