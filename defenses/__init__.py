"""Defenses against trait transmission: the plugin interface and the built-in defenses.

``get_defense(name, **params)`` returns a registered defense; built-ins register on import of this
package, outside packages through the ``subliminal_bench.defenses`` entry point group.
"""

from defenses import none as _none  # noqa: F401  (registers "none")
from defenses.base import Defense, DefenseContext, get_defense, known_defenses, register_defense

__all__ = ["Defense", "DefenseContext", "get_defense", "known_defenses", "register_defense"]
