"""``none``: the no-defense baseline. Every residual leakage is compared against it."""

from defenses.base import Defense, register_defense


@register_defense("none")
class NoDefense(Defense):
    """Passes the teacher, the rows and the training config through unchanged."""

    version = "1"
