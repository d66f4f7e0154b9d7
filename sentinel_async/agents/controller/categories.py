"""The fixed failure categories a diagnosis picks from."""

from __future__ import annotations

from enum import StrEnum


class FailureCategory(StrEnum):
    """What went wrong first in a failed episode (one per diagnosis)."""

    WRONG_ITEM = "wrong_item"
    """A write used other item ids (a sibling variant, another item) than the gold."""
    WRONG_ORDER = "wrong_order"
    """A write targeted another order than the gold."""
    MISSING_ITEMS = "missing_items"
    """A write covered only some of the gold's items (incomplete multi-item handling)."""
    WRONG_ITEM_SEQUENCE = "wrong_item_sequence"
    """The right items in another order where the order matters (`modify_pending_order_items`)."""
    WRONG_PAYMENT = "wrong_payment"
    WRONG_REASON = "wrong_reason"
    WRONG_ADDRESS = "wrong_address"
    WRONG_ARGUMENT = "wrong_argument"
    """Another argument of a write differs."""
    WRONG_ACTION = "wrong_action"
    """Another write tool on the gold's target (misread intent, e.g. return instead of exchange)."""
    MISSING_WRITE = "missing_write"
    EXTRA_WRITE = "extra_write"
    MISSING_AUTHENTICATION = "missing_authentication"
    NO_CONFIRMATION = "no_confirmation"
    """A write without an explicit yes to a confirmation request."""
    POLICY_VIOLATION = "policy_violation"
    MISSING_LOOKUP = "missing_lookup"
    WRONG_INFORMATION = "wrong_information"
    PREMATURE_STOP = "premature_stop"
    PREMATURE_TRANSFER = "premature_transfer"
    MISSING_TRANSFER = "missing_transfer"
    MAX_STEPS = "max_steps"
    TOO_MANY_ERRORS = "too_many_errors"
    PROTOCOL_ERROR = "protocol_error"
    SYSTEM_ERROR = "system_error"
    """The model server or the user simulator failed (not the policy's fault)."""
    UNKNOWN = "unknown"
