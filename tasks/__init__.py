"""The standard data tasks and the Inspect evals that score leakage.

Importing this package registers the built-in tasks (``tasks.base.get_task`` looks them up):
``numbers``, ``code`` and ``cot``.
"""

from tasks import code, cot, numbers  # noqa: F401  (registers the tasks)
