"""Evaluation: protocols that run agents for episodes, statistics, and leaderboards."""
