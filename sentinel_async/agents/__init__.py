"""Agents: the tool-agent runtime (policies, users, episodes), Controller, Proposer and Solver."""
