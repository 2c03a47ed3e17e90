"""The standard data tasks and the Inspect evals that score leakage.

Importing this package registers the built-in tasks (``tasks.base.get_task`` looks them up):
``numbers``, ``code``, ``cot``, ``paraphrase-unrelated`` and ``paraphrase-contradict``.
"""

from tasks import code, cot, numbers, paraphrase  # noqa: F401  (registers the tasks)
