"""Benchmark scripts: pilot and its peers side by side in one run (``pilot bench NAME``)."""
