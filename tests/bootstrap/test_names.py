"""Names as copied text (`spell_names`): renaming a conversation as text, and a build whose tokenizer has no
customer name as a token of its own."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import msgspec
import pytest

from sentinel_async.bootstrap.names import (
    NamePool,
    Renaming,
    draw_renaming,
    retail_name_pool,
    strip_names,
    synthetic_names,
)
from sentinel_async.messages import ChatMessage, ToolCall

needs_extras = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None or importlib.util.find_spec("tau2") is None,
    reason="needs the train and tau2 extras",
)

POOL = NamePool(
    first_sources=("Mei", "Noah"),
    last_sources=("Kovacs", "Brown"),
    first_targets=("Mei", "Noah", "Tousan", "Beimira"),
    last_targets=("Kovacs", "Brown", "Zaibros"),
    kept=frozenset({"brown"}),
)


def test_a_renaming_replaces_whole_names_in_text_calls_emails_and_user_ids() -> None:
    renaming = Renaming({"Mei": "Tousan", "mei": "tousan", "Kovacs": "Zaibros", "kovacs": "zaibros"})
    message = ChatMessage(
        role="assistant",
        content="Mei Kovacs, mei.kovacs1234@example.com, user mei_kovacs_6742; Meike and Kovacsova stay.",
        tool_calls=(
            ToolCall(
                id="c1",
                name="find_user_id_by_name_zip",
                arguments={"first_name": "Mei", "last_name": "Kovacs", "zip": "28236", "items": ["Mei", 3]},
            ),
        ),
    )
    renamed = renaming.message(message)
    assert renamed.content == (
        "Tousan Zaibros, tousan.zaibros1234@example.com, user tousan_zaibros_6742; Meike and Kovacsova stay."
    )
    assert renamed.tool_calls[0].arguments == {
        "first_name": "Tousan",
        "last_name": "Zaibros",
        "zip": "28236",
        "items": ["Tousan", 3],
    }
    assert renamed.tool_calls[0].name == "find_user_id_by_name_zip"


def test_names_are_swapped_in_one_pass_so_two_customers_stay_two() -> None:
    assert Renaming({"Mei": "Noah", "Noah": "Mei"}).text("Mei and Noah") == "Noah and Mei"


def test_a_drawn_renaming_is_one_to_one_per_part_keeps_catalogue_words_and_follows_its_seed() -> None:
    renaming = draw_renaming(POOL, random.Random(3))
    firsts = [renaming.mapping[name] for name in POOL.first_sources]
    lasts = [renaming.mapping[name] for name in POOL.last_sources]
    assert len(set(firsts)) == 2
    assert set(firsts) <= set(POOL.first_targets)
    assert len(set(lasts)) == 2
    assert set(lasts) <= set(POOL.last_targets)
    assert renaming.mapping["mei"] == renaming.mapping["Mei"].lower()
    assert "brown" not in renaming.mapping, "a name that is also a catalogue word is never renamed"
    assert draw_renaming(POOL, random.Random(3)).mapping == renaming.mapping
    assert {tuple(sorted(draw_renaming(POOL, random.Random(s)).mapping.items())) for s in range(10)} != {
        tuple(sorted(renaming.mapping.items()))
    }


def test_stripping_removes_every_name_form_and_nothing_else() -> None:
    text = "Mei met Tousan; mei.kovacs1234@x.com; brown shoes; Meike"
    assert strip_names(text, POOL) == " met ; .1234@x.com; brown shoes; Meike"


def test_synthetic_names_are_distinct_capitalised_and_avoid_the_given_words() -> None:
    names = synthetic_names(300, seed=1, avoid=["Mei", "same"])
    assert len(set(names)) == 300
    assert all(name[0].isupper() and name[1:].islower() and name.isalpha() for name in names)
    assert "Same" not in names
    assert "Mei" not in names
    assert synthetic_names(300, seed=1) == synthetic_names(300, seed=1)


@needs_extras
def test_the_retail_pool_maps_the_databases_names_to_them_and_made_up_ones() -> None:
    from sentinel_async.bootstrap.entities import catalogue_text
    from sentinel_async.tools.retail import RetailDomain

    domain = RetailDomain()
    pool = retail_name_pool(domain.db, catalogue_text(domain), synthetic=50)
    assert len(pool.first_sources) == 30
    assert len(pool.first_targets) == 80
    assert set(pool.first_sources) <= set(pool.first_targets)
    assert not set(pool.first_targets) & set(pool.last_targets)


@needs_extras
@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning", "ignore::DeprecationWarning")
def test_a_build_with_spelled_names_has_no_name_token_and_renames_its_demonstrations(tmp_path: Path) -> None:
    import torch

    from sentinel_async.bootstrap import load_or_build
    from sentinel_async.bootstrap.config import NAMED
    from sentinel_async.tools.retail import RetailDomain

    torch.set_num_threads(1)
    toy = NAMED["toy"]
    config = msgspec.structs.replace(
        toy,
        spell_names=True,
        name_copies=2,
        vocab_size=2048,  # as in `tiny`: a 600-token vocabulary is too small to make names tokens anyway
        sft=msgspec.structs.replace(toy.sft, max_steps=2),
    )
    result = load_or_build(config, cache_dir=tmp_path, progress=False)
    db = RetailDomain().db
    names = {user.name.first_name for user in db.users.values()} | {user.name.last_name for user in db.users.values()}

    def one_token(vocab: dict[str, int]) -> list[str]:
        return [form for name in names for form in (name, name.lower()) if form in vocab]

    plain = load_or_build(msgspec.structs.replace(config, spell_names=False), cache_dir=tmp_path, progress=False)
    assert len(one_token(plain.tokenizer.get_vocab())) > 40, "without it, a name is a token"
    spelled = one_token(result.tokenizer.get_vocab())
    assert len(spelled) <= 3, f"only a word of the catalogue or a piece of one ('Jackson'ville) may be ({spelled})"
    assert result.manifest.demos.tokens > 1.5 * plain.manifest.demos.tokens, "each demonstration twice, renamed"
