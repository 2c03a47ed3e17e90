"""The Streamlit leaderboard: which defense against subliminal trait transmission works, at what cost.

It reads only results artifacts (schema ``slb.results/1``, written by ``benchmark.results``) from
``submissions/*/`` and local results directories, and never imports or executes a defense plugin.

* ``leaderboard.loader`` finds the artifacts and lists what it had to skip and why;
  ``leaderboard.artifact`` parses each into a flat :class:`~leaderboard.artifact.Cell` record and
  checks its integrity.
* ``leaderboard.aggregate`` pools cells into the ranking (residual leakage with 95 % CIs, reduction
  against the no-defense baseline, ties, flags), the per-task heat map and the per-defense tables.
* ``leaderboard.charts`` builds the Altair charts; ``leaderboard.app`` is the thin Streamlit page.
* ``leaderboard.synthetic`` makes clearly synthetic artifacts for tests and ``bench_load``.

Start it with ``slb leaderboard [DIR ...]`` (default: ``submissions`` and ``results``).
"""
