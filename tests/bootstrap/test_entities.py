"""Entity tokens: every database id is one token, and training renames them consistently within a sample."""

from __future__ import annotations

import importlib.util
import random

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("tokenizers") is None or importlib.util.find_spec("tau2") is None,
    reason="needs the train and tau2 extras",
)

from sentinel_async.bootstrap.entities import (  # noqa: E402
    ENTITY_KINDS,
    EntityPermuter,
    address_token_groups,
    entity_token_groups,
    name_token_groups,
    retail_addresses,
    retail_entities,
)
from sentinel_async.bootstrap.tokenizer import train_tokenizer  # noqa: E402
from sentinel_async.tools.retail import RetailDomain  # noqa: E402


@pytest.fixture(scope="module")
def entities() -> dict[str, list[str]]:
    return retail_entities(RetailDomain().db)


@pytest.fixture(scope="module")
def tokenizer(entities: dict[str, list[str]]) -> object:
    flat = [text for texts in entities.values() for text in texts]
    return train_tokenizer("order #W2378156 for item 9612497925 at 53.48", vocab_size=1200, entities=flat)


def test_every_kind_of_id_is_found_and_no_id_has_two_kinds(entities: dict[str, list[str]]) -> None:
    assert tuple(entities) == ENTITY_KINDS
    assert len(entities["order"]) == 1000
    assert len(entities["user"]) == 500
    assert len(entities["product"]) == 50
    assert "#W2378156" in entities["order"]
    assert all(e.startswith("paypal_") for e in entities["paypal"])
    flat = [text for texts in entities.values() for text in texts]
    assert len(flat) == len(set(flat))


def test_an_id_is_one_token_only_where_it_stands_alone(tokenizer: object) -> None:
    tok: object = tokenizer
    encode = tok.encode  # type: ignore[attr-defined]
    to_tokens = tok.convert_ids_to_tokens  # type: ignore[attr-defined]
    text = 'The order id is #W2378156. {"item_ids": ["9612497925"], "payment_method_id": "paypal_3296755"}'
    tokens = to_tokens(encode(text, add_special_tokens=False))
    assert "#W2378156" in tokens
    assert "9612497925" in tokens
    assert "paypal_3296755" in tokens
    longer = to_tokens(encode("tracking 96124979251", add_special_tokens=False))
    assert "9612497925" not in longer, "an id inside a longer number is not matched"
    assert tok.decode(encode(text, add_special_tokens=False)) == text  # type: ignore[attr-defined]


def test_renaming_keeps_kinds_and_is_consistent_within_a_sample(
    tokenizer: object, entities: dict[str, list[str]]
) -> None:
    groups = entity_token_groups(tokenizer, entities)
    kinds = {token: index for index, group in enumerate(groups) for token in group}
    permute = EntityPermuter(groups)
    vocab = tokenizer.get_vocab()  # type: ignore[attr-defined]
    order, other_order, item = vocab["#W2378156"], vocab[entities["order"][0]], vocab["9612497925"]
    ids = [5, order, 7, item, order, other_order, 9]
    renamed = permute(ids, random.Random(0))
    assert renamed[0] == 5
    assert renamed[2] == 7
    assert renamed[6] == 9
    assert renamed[1] == renamed[4], "the same id is renamed the same way"
    assert renamed[1] != renamed[5], "different ids stay different"
    assert kinds[renamed[1]] == kinds[order]
    assert kinds[renamed[3]] == kinds[item]
    assert permute(ids, random.Random(0)) == renamed
    assert permute(ids, random.Random(1)) != renamed


def test_a_customer_is_renamed_throughout_a_sample_and_catalogue_words_stay() -> None:
    domain = RetailDomain()
    said = "My name is Mei Kovacs, email mei.kovacs2974@example.com. A brown leather wallet."
    names = " ".join(f"{u.name.first_name} {u.name.last_name} {u.email}" for u in domain.db.users.values())
    tokenizer = train_tokenizer(said * 20 + names, vocab_size=900, isolate_spaces=True)
    groups = name_token_groups(tokenizer, domain.db, other_text="brown")
    vocab = tokenizer.get_vocab()
    assert vocab["Mei"] in groups[0]
    assert vocab["Kovacs"] in groups[1]
    assert vocab["mei"] in groups[2]
    assert all(vocab["brown"] not in group for group in groups), "a colour is not renamed with a surname"
    encode, decode = tokenizer.encode, tokenizer.decode
    ids = encode(f"{said} Mei Kovacs", add_special_tokens=False)
    renamed = decode(EntityPermuter(groups)(ids, random.Random(3)))
    first, last = renamed.split()[3], renamed.split()[4].rstrip(",")
    assert (first, last) != ("Mei", "Kovacs")
    assert renamed.endswith(f"{first} {last}"), "the same customer is renamed the same way everywhere"
    assert "mei." not in renamed, "the email's name is renamed too"
    assert "brown leather wallet" in renamed


def test_a_new_address_is_renamed_throughout_a_sample_and_names_keep_their_own_renaming() -> None:
    domain = RetailDomain()
    addresses = retail_addresses(domain.db)
    said = "The address is 445 Maple Drive, Suite 394, Fort Worth, TX 76165, USA. Lamp color: black. "
    corpus = said * 20 + " ".join(f"{a.address1} {a.city} {a.state}" for a in addresses) + " Mei Kovacs Park"
    tokenizer = train_tokenizer(corpus, vocab_size=900, isolate_spaces=True)
    vocab = tokenizer.get_vocab()
    names = [[vocab["Park"]]]  # a surname too: it stays with the names
    groups = address_token_groups(
        tokenizer, domain.db, other_text="black", taken=names, streets_without_number=["Hillcrest Drive"]
    )
    streets, types, cities, states = groups
    assert {vocab["Maple"], vocab["Hillcrest"]} <= set(streets)
    assert vocab["Drive"] in types
    assert {vocab["Fort"], vocab["Worth"]} <= set(cities)
    assert vocab["TX"] in states
    assert all(vocab["Park"] not in group for group in groups)
    ids = tokenizer.encode(f"{said}address1 445 Maple Drive, city Fort Worth, state TX", add_special_tokens=False)
    renamed = tokenizer.decode(EntityPermuter(groups)(ids, random.Random(5)))
    said_street = renamed.split("The address is 445 ")[1].split(",")[0]
    assert said_street != "Maple Drive"
    assert f"address1 445 {said_street}," in renamed, "the call copies the street the customer said"
    assert "Lamp color: black" in renamed, "other words stay"


def test_slot_values_include_addresses_only_when_asked() -> None:
    from sentinel_async.bootstrap.slots import retail_slot_values

    db = RetailDomain().db
    assert "address1" not in retail_slot_values(db)
    values = retail_slot_values(db, addresses=True)
    assert "986 Sunset Drive" in values["address1"]
    assert {"Denver", "CO"} <= set(values["city"]) | set(values["state"])
