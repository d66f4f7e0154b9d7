"""Rendering a task's user scenario as text, exactly as tau2 shows it to an LLM user simulator."""

from __future__ import annotations

import textwrap

from sentinel_async.tools.base import TaskSpec, UserInstructions


def _instructions_text(instructions: UserInstructions) -> str:
    tab = "\t"
    lines = [
        f"Domain: {instructions.domain}",
        f"Reason for call:\n{textwrap.indent(instructions.reason_for_call, tab)}",
    ]
    if instructions.known_info is not None:
        lines.append(f"Known info:\n{textwrap.indent(instructions.known_info, tab)}")
    if instructions.unknown_info is not None:
        lines.append(f"Unknown info:\n{textwrap.indent(instructions.unknown_info, tab)}")
    lines.append(f"Task instructions:\n{textwrap.indent(instructions.task_instructions, tab)}")
    return "\n".join(lines)


def user_instructions(task: TaskSpec) -> str:
    """tau2's `str(task.user_scenario)`: persona (if any), then the instructions."""
    scenario = task.user_scenario
    lines = []
    if scenario.persona is not None:
        lines += ["Persona:", textwrap.indent(scenario.persona, "\t")]
    body = (
        scenario.instructions if isinstance(scenario.instructions, str) else _instructions_text(scenario.instructions)
    )
    lines += ["Instructions:", textwrap.indent(body, "\t")]
    return "\n".join(lines)
