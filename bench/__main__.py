"""Every benchmark, one after the other: `uv run python -m bench [--quick] [--backend ...]`.

Runs bench.webhooks, then bench.dispatch, with the same options; exits 1 when either misses a
target (or fails to run). See bench/README.md.
"""

from __future__ import annotations

import argparse
import sys
import time

from bench import dispatch, webhooks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help="short smoke runs of both (SQLite only)"
    )
    parser.add_argument(
        "--backend", choices=("sqlite", "postgresql", "both"), default=None,
        help="database(s) to measure (default: both; sqlite with --quick)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    forwarded = (["--quick"] if args.quick else []) + (
        ["--backend", args.backend] if args.backend else []
    )
    outcomes: list[tuple[str, str]] = []
    started = time.monotonic()
    for name, run in (("bench.webhooks", webhooks.main), ("bench.dispatch", dispatch.main)):
        print(f"\n=== {name} {' '.join(forwarded)}".rstrip(), flush=True)
        try:
            code = run(forwarded)
            outcomes.append((name, "all targets met" if code == 0 else "a target missed"))
        except SystemExit as stopped:  # a server that would not start, a database that failed
            print(stopped, file=sys.stderr)
            reason = (str(stopped).splitlines() or ["exit"])[0]
            outcomes.append((name, f"did not finish: {reason}"))
    print(f"\n=== summary ({time.monotonic() - started:.0f} s)")
    for name, outcome in outcomes:
        print(f"{name}: {outcome}")
    return 0 if all(outcome == "all targets met" for _, outcome in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
