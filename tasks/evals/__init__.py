"""Inspect evals that score trait leakage (favourite-animal preference), sampled and teacher-forced.

``tasks.evals.questions`` holds the question set and answer matching; ``tasks.evals.animal_preference``
the Inspect tasks, which are registered for ``inspect eval subliminal_bench/<task>`` through
``tasks._registry``.
"""
