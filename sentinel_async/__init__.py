"""sentinel-async: failure-driven RL for tool-using agents on an event-sourced async core."""

__version__ = "0.1.0"
