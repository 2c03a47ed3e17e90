"""Defenses against trait transmission: the plugin interface and the built-in defenses.

``get_defense(ref, **params)`` returns a defense by built-in name, entry point name
(group ``subliminal_bench.defenses``) or ``path/to/file.py:ClassName``; see ``defenses.base`` for
the interface, ``defenses.loading`` for where defense classes come from, ``defenses.registry``
to get one, ``defenses.isolation`` for how
untrusted ones run, and ``defenses.runner`` for the checks every hook's result passes.
"""

# Importing the built-in modules registers them by name.
from defenses import (  # noqa: F401
    banned_words,
    canonicalize,
    cross_base_teacher,
    divergence_mask,
    embedding_outlier,
    freeze_early_layers,
    llm_judge,
    none,
    random_drop,
    rephrase,
    restrict_labels,
    sampling_truncation,
)
from defenses.base import Defense, DefenseContext, FilterDefense, RewriteDefense, Row
from defenses.loading import ENTRY_POINT_GROUP, known_defenses, register_defense
from defenses.registry import get_defense, load_defense

__all__ = [
    "ENTRY_POINT_GROUP",
    "Defense",
    "DefenseContext",
    "FilterDefense",
    "RewriteDefense",
    "Row",
    "get_defense",
    "known_defenses",
    "load_defense",
    "register_defense",
]
