"""pilot: reinforcement-learning and autonomous-driving simulation suite."""

__version__ = "0.1.0"
