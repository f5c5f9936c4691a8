"""Benchmarks: `python -m bench` runs bench.webhooks, then bench.dispatch; see README.md."""
