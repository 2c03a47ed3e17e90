"""``none``: the no-defense baseline. Every residual leakage is compared against it."""

from defenses.base import Defense
from defenses.loading import register_defense


@register_defense("none")
class NoDefense(Defense):
    """No defense: the teacher, the rows and the student's training pass through unchanged."""

    version = "1"
