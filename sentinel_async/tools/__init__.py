"""Tool domains: tool schemas, executable environments, policies and tasks. They know nothing of agents or training."""
