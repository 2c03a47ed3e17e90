"""The Streamlit leaderboard: which defense against subliminal trait transmission works, how sure
that is, and at what cost.

It reads only results artifacts (schema ``slb.results/1``, written by ``benchmark.core.results``)
from ``submissions/*/`` and local results directories, and never imports or executes a defense
plugin. Of the project it imports ``benchmark.core`` only (never the orchestrator, defenses or
tasks): every setup, label and hash it shows was written into the artifacts.

* ``leaderboard.loader`` finds the artifacts, parses each with ``benchmark.core.artifact`` into a
  :class:`~benchmark.core.artifact.CellResult` (integrity checked), decides which submission
  folder each belongs to, and lists what it skipped and why; ``leaderboard.references`` marks
  bounds and controls (never ranked).
* ``leaderboard.pairing`` computes the setup's ranking statistic run by run and pairs an entry's
  runs with the baseline's by seed; ``leaderboard.verdicts`` is the rule (paired test, Holm,
  verdict, order); ``leaderboard.ranking`` builds the table; ``leaderboard.tables`` selects cells
  and builds the per-task and per-group tables; ``leaderboard.pooling`` the question-level pools
  that a suite summary also reports.
* ``leaderboard.views`` turns those into display tables and Altair charts (the forest plot first);
  ``leaderboard.app`` is the thin Streamlit page; ``leaderboard.export`` writes the same as a
  static site; ``leaderboard.headless`` runs the app in headless Chromium.

Its tests use synthetic artifacts (``benchmark/run/synthetic.py``) and the committed ones. Start
it with ``slb leaderboard [DIR ...]`` (default: ``submissions`` and ``results``).
"""
