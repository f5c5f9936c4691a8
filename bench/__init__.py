"""Benchmarks: `python -m bench.webhooks` measures the voice webhook path against a bare ceiling."""
