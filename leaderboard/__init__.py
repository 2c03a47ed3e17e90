"""The Streamlit leaderboard (issue #5; not built yet). It will read only results artifacts
(schema ``slb.results/1``, see ``benchmark.results``) and never execute a plugin."""
