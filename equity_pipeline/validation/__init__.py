"""Validation of input tables against the suites in ``expectations/``.

* :mod:`normalize` - trims and normalises text as each column's contract says;
* :mod:`derived`   - computes the ``_``-prefixed helper columns some rules look at (cross-table and
  check-digit facts that a single-column expectation cannot see);
* :mod:`rules`     - the fast row-level evaluator: turns each GX expectation into a polars expression;
* :mod:`ingest`    - read -> structural checks -> normalise -> rules -> split into used / quarantined.
"""
