"""Repeatable benchmarks of authsvc beside its peers (``python -m bench.run_all``)."""
