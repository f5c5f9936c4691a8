"""Developer scripts; a package so benchmarks can `from scripts.throwaway_postgres import ...`."""
