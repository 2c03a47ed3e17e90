"""The Streamlit leaderboard: which defense against subliminal trait transmission works, at what cost.

It reads only results artifacts (schema ``slb.results/1``, written by ``benchmark.core.results``)
from ``submissions/*/`` and local results directories, and never imports or executes a defense
plugin. Of the project it imports ``benchmark.core`` only (never the orchestrator, defenses or
tasks): every setup, label and hash it shows was written into the artifacts.

* ``leaderboard.loader`` finds the artifacts, parses each with ``benchmark.core.artifact`` into a
  :class:`~benchmark.core.artifact.CellResult` (integrity checked) and lists what it skipped
  and why.
* ``leaderboard.pooling`` groups and aligns cells and pools them with ``benchmark.core.stats``
  (residual leakage, own-animal statistic, reduction against the no-defense baseline).
* ``leaderboard.ranking`` ranks the defense entries of one setup (ties, noise borrowing, flags);
  ``leaderboard.tables`` selects cells and builds the per-task and per-group tables.
* ``leaderboard.views`` turns those into display tables and Altair charts; ``leaderboard.app`` is
  the thin Streamlit page; ``leaderboard.headless`` runs it in headless Chromium.

Its tests and load benchmark use synthetic artifacts (``benchmark/run/synthetic.py``).
Start it with ``slb leaderboard [DIR ...]`` (default: ``submissions`` and ``results``).
"""
