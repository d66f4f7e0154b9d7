"""Building the bootstrap policy once and caching it: tokenizer, model safetensors, config and a manifest.

The cache root is the `cache_dir` argument, else `$SENTINEL_CACHE/bootstrap`, else
`~/.cache/sentinel-async/bootstrap`; each configuration lives in `<root>/<fingerprint>/`, so a changed
configuration builds anew. A build writes a temporary folder and renames it into place under a file lock.
A configuration that gained a field since a build was made has a new fingerprint but the same computation when
the field is at its default; such a build (same `FORMAT_VERSION`, equal configuration once its manifest is read
with today's defaults) is reused instead of rebuilt.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import msgspec

from sentinel_async.bootstrap.config import FORMAT_VERSION, BootstrapConfig, fingerprint, resolve_tool_view
from sentinel_async.bootstrap.demos import (
    DemoSet,
    TaskSource,
    dialogue_text,
    generate_demos,
    tokenize_demos,
    turn_window_samples,
)
from sentinel_async.bootstrap.sft import NOT_LEARNT, SFTMetrics, cut_short_by_time, draw_seed, train_sft
from sentinel_async.logs import get_logger
from sentinel_async.prompt_view import PromptView, view_tool_results
from sentinel_async.tools.base import TaskSpec

_log = get_logger("bootstrap")

MANIFEST = "manifest.json"


class DemoStats(msgspec.Struct, frozen=True, kw_only=True):
    """The demonstration mix that was trained on."""

    episodes: int
    failed: int
    cut: int
    tokens: int
    assistant_tokens: int
    episodes_by_intent: dict[str, int]
    tasks_by_intent: dict[str, int]
    extra_tasks: int
    recoveries: int = 0
    """Injected mistakes followed by their correction (`DemoConfig.mistake_rate`)."""


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    """What was built, from which configuration, and how training went."""

    fingerprint: str
    config: BootstrapConfig
    created: str
    parameters: int
    vocab_size: int
    prompt_prefix_tokens: int
    """Tokens of the system prompt and tool list alone (every prompt starts with them)."""
    demos: DemoStats
    sft: SFTMetrics
    build_seconds: float
    format_version: int = 0
    """The `FORMAT_VERSION` the build was made with (0: made before it was recorded)."""


@dataclass(frozen=True)
class Bootstrap:
    """A built bootstrap policy: its folder, tokenizer, model (fp32, eval mode) and manifest."""

    path: Path
    tokenizer: Any
    model: Any
    manifest: Manifest

    @property
    def prompt_view(self) -> PromptView:
        """What this policy is shown of a conversation, as in its training (`tool_view`, `window`)."""
        config = self.manifest.config
        return PromptView(tool_view=resolve_tool_view(config.tool_view), window=config.window)


def cache_root(cache_dir: Path | str | None = None) -> Path:
    """Where bootstrap results live (argument, then `$SENTINEL_CACHE/bootstrap`, then the user cache)."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("SENTINEL_CACHE")
    if env:
        return Path(env).expanduser() / "bootstrap"
    return Path.home() / ".cache" / "sentinel-async" / "bootstrap"


def cache_path(config: BootstrapConfig, cache_dir: Path | str | None = None) -> Path:
    """The folder of this configuration's result."""
    return cache_root(cache_dir) / fingerprint(config)


def read_manifest(path: Path) -> Manifest | None:
    """The manifest of a finished build in `path`, or None when there is none (or it is unreadable)."""
    try:
        return msgspec.json.decode((path / MANIFEST).read_bytes(), type=Manifest)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None


def find_equivalent(config: BootstrapConfig, cache_dir: Path | str | None = None) -> Path | None:
    """A finished build of `config` filed under another fingerprint, or None.

    It must have been made with today's `FORMAT_VERSION` and its recorded configuration, read with today's
    fields (a field it lacks takes its default), must equal `config`: the case of a configuration that gained a
    field, left at its default, after the build was made.
    """
    root = cache_root(cache_dir)
    if not root.is_dir():
        return None
    for candidate in sorted(p for p in root.iterdir() if p.is_dir()):
        manifest = read_manifest(candidate)
        if manifest is not None and manifest.format_version == FORMAT_VERSION and manifest.config == config:
            return candidate
    return None


def load(path: Path) -> Bootstrap:
    """Load a finished build from its folder."""
    from sentinel_async.bootstrap.model import load_model
    from sentinel_async.bootstrap.tokenizer import load_tokenizer

    manifest = read_manifest(path)
    if manifest is None:
        raise FileNotFoundError(f"no bootstrap manifest in {path}")
    return Bootstrap(path=path, tokenizer=load_tokenizer(path), model=load_model(path), manifest=manifest)


def load_or_build(
    config: BootstrapConfig,
    *,
    cache_dir: Path | str | None = None,
    force: bool = False,
    progress: bool = True,
    task_source: TaskSource | None = None,
) -> Bootstrap:
    """The cached bootstrap for `config`, built first when missing (or when `force`).

    Synchronous: from async code call it through `anyio.to_thread.run_sync`. `task_source` supplies
    `config.demos.general_tasks` extra tasks for demonstrations (default: the Proposer's general generator).
    """
    from filelock import FileLock

    path = cache_path(config, cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if not force and read_manifest(path) is not None:
            return load(path)
        equivalent = None if force else find_equivalent(config, cache_dir)
        if equivalent is not None:
            _log.info("reusing an equivalent build", build=equivalent.name, fingerprint=path.name)
            return load(equivalent)
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            build(config, tmp, progress=progress, task_source=task_source)
            if path.exists():
                shutil.rmtree(path)
            tmp.rename(path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return load(path)


def load_bootstrap_models(
    size: str = "tiny",
    cache_dir: Path | str | None = None,
    *,
    minutes: float | None = None,
    steps: int | None = None,
    seed: int | None = None,
    progress: bool = True,
) -> tuple[Any, Any, Any, PromptView]:
    """(tokenizer, rollout model, training model, prompt view) of the cached bootstrap of a named size (with
    `bootstrap_config`'s `minutes`, `steps` and `seed`), built on first use. The two models are separate copies
    of the same weights (the trainer updates one, generation reads the other); prompts must be rendered through
    the prompt view, as in training."""
    from sentinel_async.bootstrap.config import bootstrap_config
    from sentinel_async.bootstrap.model import load_model

    config = bootstrap_config(size, minutes=minutes, steps=steps, seed=seed)
    result = load_or_build(config, cache_dir=cache_dir, progress=progress)
    return result.tokenizer, result.model, load_model(result.path), result.prompt_view


def build(
    config: BootstrapConfig, out: Path, *, progress: bool = True, task_source: TaskSource | None = None
) -> Manifest:
    """Demonstrations -> tokenizer -> tokenised demos -> model -> SFT; writes everything into `out`."""
    from tqdm import tqdm

    from sentinel_async.bootstrap.entities import (
        address_token_groups,
        catalogue_text,
        entity_token_groups,
        name_token_groups,
        retail_entities,
    )
    from sentinel_async.bootstrap.model import build_model, parameter_count, save_model
    from sentinel_async.bootstrap.names import draw_renaming, retail_name_pool, strip_names
    from sentinel_async.bootstrap.slots import RETAIL_SLOT_KEYS, SlotCopy, retail_listings, retail_slot_values
    from sentinel_async.bootstrap.tokenizer import render_ids, retail_corpus, save_tokenizer, train_tokenizer
    from sentinel_async.tools.retail import RetailDomain

    start = time.monotonic()
    domain = RetailDomain()
    extra: Sequence[TaskSpec] = ()
    if config.demos.general_tasks:
        source = task_source
        if source is None:
            from sentinel_async.agents.proposer import general_tasks

            source = general_tasks
        if progress:
            tqdm.write(f"bootstrap: generating {config.demos.general_tasks} verified general tasks for demonstrations")
        extra = source(domain, config.demos.general_tasks, config.demos.seed)
    demos = _run_demos(domain, config, extra, progress)
    view = resolve_tool_view(config.tool_view)
    conversations = [view_tool_results(c, view) for c in demos.conversations]
    tools = domain.tool_schemas()
    entities = retail_entities(domain.db) if config.entity_tokens else {}
    other_text = catalogue_text(domain)
    corpus = retail_corpus(domain, (dialogue_text(c) for c in conversations))
    slot_values = retail_slot_values(domain.db, addresses=config.copy_addresses)
    if config.spell_names:
        pool = retail_name_pool(domain.db, other_text, synthetic=config.made_up_names, seed=config.demos.seed)
        corpus = strip_names(corpus, pool)
        rng = random.Random(config.demos.seed)
        conversations = [
            draw_renaming(pool, rng).conversation(c) for c in conversations for _ in range(config.name_copies)
        ]
        slot_values["first_name"], slot_values["last_name"] = list(pool.first_targets), list(pool.last_targets)
    if config.permute_payment_kinds:
        from sentinel_async.bootstrap.ids import permute_payment_kinds

        conversations = permute_payment_kinds(conversations, config.demos.seed, say_kinds=config.say_payment_kinds)
    tokenizer = train_tokenizer(
        corpus,
        vocab_size=config.vocab_size,
        style=config.prompt_style,
        digit_group=config.digit_group,
        isolate_spaces=config.isolate_spaces,
        entities=[text for texts in entities.values() for text in texts],
    )
    samples, cut = tokenize_demos(tokenizer, conversations, tools, max_len=config.model.context, window=config.window)
    if config.demos.turn_windows:
        samples += [w for c in conversations for w in turn_window_samples(tokenizer, c)]
    prefix, _ = render_ids(tokenizer, [{"role": "system", "content": domain.policy()}], tools)
    eos = tokenizer.eos_token_id
    model = build_model(config.model, len(tokenizer), eos_token_id=eos, pad_token_id=0)
    if progress:
        tqdm.write(f"bootstrap: {len(samples)} demonstrations, {parameter_count(model):,} parameters; training")
    slots = None
    if config.sft.uses_slots:
        slots = SlotCopy(
            tokenizer,
            slot_values,
            [s.ids for s in samples],
            hard_slots=config.sft.slot_values_per_call,
            keys=RETAIL_SLOT_KEYS,
            listings=retail_listings(domain.db) if config.sft.slot_recall > 0 else (),
            recall_share=config.sft.slot_recall,
            kind_contest=config.sft.slot_kind_contest,
        )
    entity_groups = entity_token_groups(tokenizer, entities)
    if config.permute_names and not config.spell_names:
        entity_groups += name_token_groups(tokenizer, domain.db, other_text)
    if config.copy_addresses:
        from sentinel_async.agents.proposer.generators import NEW_STREETS

        entity_groups += address_token_groups(
            tokenizer, domain.db, other_text, taken=entity_groups, streets_without_number=NEW_STREETS
        )

    def redraw(draw: int) -> None:
        seed = draw_seed(config.model.seed, draw)
        fresh = build_model(msgspec.structs.replace(config.model, seed=seed), len(tokenizer), eos_token_id=eos)
        model.load_state_dict(fresh.state_dict())
        _log.info("bootstrap_redraw", draw=draw, seed=seed, reason="copying not learnt in time")

    metrics = train_sft(
        model,
        samples,
        config.sft,
        pad_id=tokenizer.pad_token_id,
        progress=progress,
        entity_groups=entity_groups,
        slots=slots,
        redraw=redraw,
    )
    if metrics.slot_waited_out:
        _log.warning("bootstrap_copying_not_learnt", detail=NOT_LEARNT, seed=config.sft.seed, draws=metrics.slot_draws)
    cut_short = cut_short_by_time(config.sft, metrics, config.size)
    if cut_short is not None:
        _log.warning("bootstrap_cut_short_by_time", detail=cut_short)
    save_tokenizer(tokenizer, out)
    save_model(model, out)
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        fingerprint=fingerprint(config),
        config=config,
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        parameters=parameter_count(model),
        vocab_size=len(tokenizer),
        prompt_prefix_tokens=len(prefix),
        demos=DemoStats(
            episodes=len(demos.conversations),
            failed=demos.failed,
            cut=cut,
            tokens=sum(len(s.ids) for s in samples),
            assistant_tokens=sum(sum(s.mask) for s in samples),
            episodes_by_intent=demos.episodes_by_intent,
            tasks_by_intent=demos.tasks_by_intent,
            extra_tasks=len(extra),
            recoveries=demos.recoveries,
        ),
        sft=metrics,
        build_seconds=time.monotonic() - start,
    )
    (out / MANIFEST).write_bytes(msgspec.json.format(msgspec.json.encode(manifest)))
    return manifest


def _run_demos(domain: Any, config: BootstrapConfig, extra: Sequence[TaskSpec], progress: bool) -> DemoSet:
    from tqdm import tqdm

    with tqdm(desc="bootstrap demos", unit="episode", disable=not progress, leave=False) as bar:

        async def run() -> DemoSet:
            return await generate_demos(domain, config.demos, extra_tasks=extra, on_done=lambda: bar.update(1))

        return anyio.run(run)
