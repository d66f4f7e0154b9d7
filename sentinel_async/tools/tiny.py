"""A tiny, dependency-free library domain for fast tests: 5 tools (3 read, 2 write) and 4 tasks.

It behaves like the retail domain where the episode runner can tell: tool errors are outcomes with
`error=True` and content "Error: ...", environments fork from a cached base state, and the state hash is
a sha256 of deterministic JSON.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from typing import Any

import msgspec

from sentinel_async.messages import ToolCall, ToolOutcome
from sentinel_async.tools.base import (
    EvaluationCriteria,
    GoldAction,
    Split,
    TaskSpec,
    UserInstructions,
    UserScenario,
)


class Book(msgspec.Struct, kw_only=True):
    book_id: str
    title: str
    author: str
    available: bool = True


class Member(msgspec.Struct, kw_only=True):
    member_id: str
    name: str
    email: str
    borrowed: list[str] = msgspec.field(default_factory=list)


class LibraryState(msgspec.Struct, kw_only=True):
    """The whole state of one library environment."""

    books: dict[str, Book]
    members: dict[str, Member]


_BASE = LibraryState(
    books={
        "b1": Book(book_id="b1", title="Dune", author="Frank Herbert"),
        "b2": Book(book_id="b2", title="Emma", author="Jane Austen"),
        "b3": Book(book_id="b3", title="Ulysses", author="James Joyce", available=False),
    },
    members={
        "ada": Member(member_id="ada", name="Ada Lovelace", email="ada@example.com"),
        "alan": Member(member_id="alan", name="Alan Turing", email="alan@example.com", borrowed=["b3"]),
    },
)
_BASE_JSON = msgspec.json.encode(_BASE)
MAX_BORROWED = 2
_WRITE_TOOLS = frozenset({"borrow_book", "return_book"})


class LibraryEnvironment:
    """One episode's library; tools are the public methods named in `LibraryDomain.tool_names()`."""

    def __init__(self) -> None:
        self.state = msgspec.json.decode(_BASE_JSON, type=LibraryState)
        self._tools: dict[str, Callable[..., Any]] = {
            "find_member_by_email": self.find_member_by_email,
            "get_member": self.get_member,
            "get_book": self.get_book,
            "borrow_book": self.borrow_book,
            "return_book": self.return_book,
        }

    def call(self, call: ToolCall) -> ToolOutcome:
        """Run a tool; any failure (unknown tool, bad arguments, rule broken) is an error outcome."""
        tool = self._tools.get(call.name)
        if tool is None:
            return ToolOutcome(content=f"Error: Tool '{call.name}' not found.", error=True)
        try:
            inspect.signature(tool).bind(**call.arguments)
            result = tool(**call.arguments)
        except Exception as exc:  # a tool failure is an outcome, never an exception
            return ToolOutcome(content=f"Error: {exc}", error=True)
        content = result if isinstance(result, str) else msgspec.json.encode(result).decode()
        return ToolOutcome(content=content)

    def state_hash(self) -> str:
        """sha256 of the state as deterministic JSON (sorted keys)."""
        return hashlib.sha256(msgspec.json.encode(self.state, order="sorted")).hexdigest()

    def is_write_tool(self, name: str) -> bool:
        return name in _WRITE_TOOLS

    def _member(self, member_id: str) -> Member:
        if member_id not in self.state.members:
            raise ValueError("Member not found")
        return self.state.members[member_id]

    def _book(self, book_id: str) -> Book:
        if book_id not in self.state.books:
            raise ValueError("Book not found")
        return self.state.books[book_id]

    def find_member_by_email(self, email: str) -> str:
        for member in self.state.members.values():
            if member.email == str(email).lower():
                return member.member_id
        raise ValueError("Member not found")

    def get_member(self, member_id: str) -> Member:
        return self._member(member_id)

    def get_book(self, book_id: str) -> Book:
        return self._book(book_id)

    def borrow_book(self, member_id: str, book_id: str) -> Member:
        member, book = self._member(member_id), self._book(book_id)
        if not book.available:
            raise ValueError("Book is not available")
        if len(member.borrowed) >= MAX_BORROWED:
            raise ValueError(f"Members may borrow at most {MAX_BORROWED} books")
        book.available = False
        member.borrowed.append(book_id)
        return member

    def return_book(self, member_id: str, book_id: str) -> Member:
        member, book = self._member(member_id), self._book(book_id)
        if book_id not in member.borrowed:
            raise ValueError("The member has not borrowed this book")
        member.borrowed.remove(book_id)
        book.available = True
        return member


def _schema(name: str, description: str, **params: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {p: {"type": "string", "description": d} for p, d in params.items()},
                "required": list(params),
            },
        },
    }


_SCHEMAS = [
    _schema("find_member_by_email", "Find a member id by email.", email="The member's email."),
    _schema("get_member", "Get a member's details and borrowed books.", member_id="The member id."),
    _schema("get_book", "Get a book's details and availability.", book_id="The book id, such as 'b1'."),
    _schema("borrow_book", "Lend an available book to a member.", member_id="Member id.", book_id="Book id."),
    _schema("return_book", "Take a borrowed book back.", member_id="Member id.", book_id="Book id."),
]

POLICY = (
    "You are a library assistant. Identify the member by email before anything else. "
    f"A member may hold at most {MAX_BORROWED} books. Confirm with the member before lending or returning."
)


def _task(
    task_id: str, reason: str, known: str, actions: list[tuple[str, dict[str, str]]], info: list[str]
) -> TaskSpec:
    return TaskSpec(
        id=task_id,
        user_scenario=UserScenario(
            instructions=UserInstructions(domain="library", reason_for_call=reason, known_info=known)
        ),
        evaluation_criteria=EvaluationCriteria(
            actions=[
                GoldAction(action_id=f"{task_id}_{i}", name=name, arguments=args)
                for i, (name, args) in enumerate(actions)
            ],
            communicate_info=info,
        ),
    )


_ADA = ("find_member_by_email", {"email": "ada@example.com"})
_ALAN = ("find_member_by_email", {"email": "alan@example.com"})
TASKS = [
    _task(
        "lib_0",
        "You want to borrow Dune (b1).",
        "You are Ada, ada@example.com.",
        [_ADA, ("borrow_book", {"member_id": "ada", "book_id": "b1"})],
        [],
    ),
    _task(
        "lib_1",
        "You want to return Ulysses (b3).",
        "You are Alan, alan@example.com.",
        [_ALAN, ("return_book", {"member_id": "alan", "book_id": "b3"})],
        [],
    ),
    _task(
        "lib_2",
        "You want to know who wrote Emma (b2); you borrow nothing.",
        "You are Ada, ada@example.com.",
        [_ADA, ("get_book", {"book_id": "b2"})],
        ["Jane Austen"],
    ),
    _task(
        "lib_3",
        "You want to return Ulysses (b3), then borrow Dune (b1) and Emma (b2).",
        "You are Alan, alan@example.com.",
        [
            _ALAN,
            ("return_book", {"member_id": "alan", "book_id": "b3"}),
            ("borrow_book", {"member_id": "alan", "book_id": "b1"}),
            ("borrow_book", {"member_id": "alan", "book_id": "b2"}),
        ],
        [],
    ),
]
_SPLITS: dict[str, tuple[str, ...]] = {"train": ("lib_0", "lib_1", "lib_3"), "test": ("lib_2",)}


class LibraryDomain:
    """The tiny library domain (implements the `Domain` protocol)."""

    name = "library"

    def tool_schemas(self) -> list[dict[str, Any]]:
        return msgspec.json.decode(msgspec.json.encode(_SCHEMAS))  # type: ignore[no-any-return]

    def tool_names(self) -> tuple[str, ...]:
        return tuple(s["function"]["name"] for s in _SCHEMAS)

    def write_tools(self) -> frozenset[str]:
        return _WRITE_TOOLS

    def is_write_tool(self, name: str) -> bool:
        return name in _WRITE_TOOLS

    def policy(self) -> str:
        return POLICY

    def tasks(self, split: Split = "base") -> list[TaskSpec]:
        if split == "base":
            return list(TASKS)
        return [t for t in TASKS if t.id in _SPLITS[split]]

    def task(self, task_id: str) -> TaskSpec:
        for task in TASKS:
            if task.id == task_id:
                return task
        raise KeyError(f"no library task with id {task_id!r}")

    def new_environment(self) -> LibraryEnvironment:
        return LibraryEnvironment()

    def base_hash(self) -> str:
        return LibraryEnvironment().state_hash()
