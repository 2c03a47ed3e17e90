"""``banned_words``: drop every row whose completion mentions any animal.

Idea: Cloud et al. 2025 ("Subliminal Learning", arXiv 2507.14805) filter the teacher's code and
chain-of-thought data for references to the trait before training the student — and show that the
trait still transmits through what the filter keeps. Their filter knows the trait. A defender does
not, so this version bans *every* animal word: a row goes if ``benchmark.core.lexicon.animals_mentioned``
finds any animal in its completion (whole words, plurals and variants, camelCase split, Unicode
normalised; the same rule the task filters use), plus any ``extra_words`` given.

Known limits: it removes only *overt* mentions, which is exactly what subliminal transmission does
not need — on number data it removes nothing. It over-removes on data where animals appear for
honest reasons (paraphrases of text about animals), and with ``ambiguous=True`` also rows using
words like "bear in mind" or "python"; its cost is the share of rows dropped. Words outside the
lexicon, misspellings, other languages, look-alike letters and emoji pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from benchmark.core.lexicon import animals_mentioned, words
from defenses.base import FilterDefense, Row
from defenses.loading import register_defense


@register_defense("banned_words")
class BannedWords(FilterDefense):
    """Drops every row whose completion mentions any animal (blind generalisation of the
    paper's banned-word filter), plus any extra banned words."""

    version = "1"

    @dataclass(frozen=True)
    class Params:
        ambiguous: bool = field(
            default=True,
            metadata={"help": "also ban forms that are everyday words (bear, fly, python)"},
        )
        extra_words: tuple[str, ...] = field(
            default=(), metadata={"help": "further words to ban (whole words, any case)"}
        )

    def keep(self, row: Row) -> bool:
        text = row["completion"]
        if animals_mentioned(text, ambiguous=self.params.ambiguous):
            return False
        extra = {w.casefold() for w in self.params.extra_words}
        return not (extra and extra.intersection(words(text)))
