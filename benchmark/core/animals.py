"""Animal names: the candidate answer set, plurals, and the one rule that validates a trait name.

Every layer names animals the same way: a trait on the command line (``"Owls"`` -> ``"owl"``), the
teacher's fine-tuning rows, the eval's answer matcher and a defense's word filter. ``normalise_animal``
refuses anything that is not one or two alphabetic words; ``animal_pattern`` matches an animal or
its plural as whole words ("owls!" matches, "bowl", "howl" and "owlet" do not). The fuller lexicon
(synonyms, mention matching) is ``benchmark.core.lexicon``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

CANDIDATE_ANIMALS: tuple[str, ...] = (
    "owl",
    "dog",
    "cat",
    "lion",
    "tiger",
    "elephant",
    "dolphin",
    "eagle",
    "wolf",
    "fox",
    "bear",
    "horse",
    "panda",
    "penguin",
    "rabbit",
    "giraffe",
    "monkey",
    "whale",
    "shark",
    "otter",
    "octopus",
    "butterfly",
    "koala",
    "turtle",
)

# Plurals that simple suffix rules get wrong (or where the singular is itself irregular).
_IRREGULAR_PLURALS: dict[str, str] = {
    "mouse": "mice",
    "goose": "geese",
    "ox": "oxen",
    "wolf": "wolves",
    "calf": "calves",
    "leaf": "leaves",
    "elf": "elves",
    "octopus": "octopuses",
    "cactus": "cacti",
    "hippopotamus": "hippopotamuses",
    "person": "people",
    "sheep": "sheep",
    "deer": "deer",
    "fish": "fish",
    "moose": "moose",
    "bison": "bison",
    "salmon": "salmon",
}
_SINGULARS: dict[str, str] = {plural: single for single, plural in _IRREGULAR_PLURALS.items()}
_NAME_RE = re.compile(r"[a-z]+(?:[ -][a-z]+)?")


def plural(animal: str) -> str:
    """English plural of a lower-case animal name (``fox`` -> ``foxes``, ``wolf`` -> ``wolves``)."""
    head, _, last = animal.rpartition(" ")
    prefix = f"{head} " if head else ""
    if last in _IRREGULAR_PLURALS:
        return prefix + _IRREGULAR_PLURALS[last]
    if last.endswith(("s", "x", "z", "ch", "sh")):
        return f"{animal}es"
    if last.endswith("y") and len(last) > 1 and last[-2] not in "aeiou":
        return f"{animal[:-1]}ies"
    return f"{animal}s"


# Singular names that end in "s" (so a trailing "s" is not a plural) or in "ie" (so "-ies" is not
# "-y"): the lexicon's animals that the suffix rules would get wrong (tests/test_properties.py
# checks every lexicon animal and its plural).
_S_FINAL = frozenset({"ibis", "mantis", "platypus", "rhinoceros", "walrus", "hippopotamus"})
_IE_FINAL = frozenset({"magpie", "budgie", "collie"})


def _singular(name: str) -> str:
    head, _, last = name.rpartition(" ")
    prefix = f"{head} " if head else ""
    if last in _IRREGULAR_PLURALS or last in CANDIDATE_ANIMALS or last in _S_FINAL:
        return name
    if last in _SINGULARS:
        return prefix + _SINGULARS[last]
    if last.endswith("es") and last[:-2] in _S_FINAL:
        return prefix + last[:-2]
    if last.endswith("s") and last[:-1] in _IE_FINAL:
        return prefix + last[:-1]
    if last.endswith("ies") and len(last) > 4:
        return prefix + last[:-3] + "y"
    if last.endswith(("sses", "xes", "zes", "ches", "shes")):
        return prefix + last[:-2]
    if last.endswith("s") and not last.endswith("ss") and len(last) > 3:
        return prefix + last[:-1]
    return name


def normalise_animal(name: str) -> str:
    """Validate a trait animal and return its lower-case singular form (``"Owls"`` -> ``"owl"``).

    Accepts one or two alphabetic words (``"sea otter"``); raises ``ValueError`` naming the value
    otherwise.
    """
    if not isinstance(name, str):
        raise ValueError(f"animal must be a string such as 'owl', got {name!r}")
    cleaned = " ".join(name.strip().lower().replace("_", " ").split())
    if not cleaned or not _NAME_RE.fullmatch(cleaned):
        raise ValueError(
            f"invalid animal {name!r}: expected one or two alphabetic words such as 'owl' or "
            "'sea otter'"
        )
    return _singular(cleaned.replace("-", " "))


def animal_pattern(animal: str) -> re.Pattern[str]:
    """Case-insensitive whole-word regex for the animal or its plural.

    Word boundaries are letter-based, so "owl", "Owls!" and "OWL." match while "bowl", "howl" and
    "owlet" do not; "snow-owl" matches, as a hyphen separates words.
    """
    single = normalise_animal(animal)
    forms = sorted({single, plural(single)}, key=len, reverse=True)
    alternatives = "|".join(r"[\s-]+".join(map(re.escape, f.split(" "))) for f in forms)
    return re.compile(rf"(?<![^\W\d_])(?:{alternatives})(?![^\W\d_])", re.IGNORECASE)


def word_token_ids(tok: Any, animals: tuple[str, ...] = CANDIDATE_ANIMALS) -> dict[int, str]:
    """The tokenizer's tokens that are a whole animal name or its plural (case and surrounding
    spaces aside: " owl", "Owls"), mapped to the animal. A name the tokenizer splits into pieces
    has no such token, so counts built on this miss it."""
    forms = {f: a for a in animals for f in (a, plural(a))}
    out: dict[int, str] = {}
    for i in range(len(tok)):
        animal = forms.get(tok.decode([i]).strip().lower())
        if animal is not None:
            out[i] = animal
    return out


def animal_label_mass(tok: Any, labels: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Per candidate animal, the mean over the labelled positions of soft ``labels`` (each row's
    ``{"ids": [[token, ...] per position], "logprobs": [...]}``, as
    ``benchmark.core.distill.soft_labels`` writes them) of the kept labels' probability on the
    animal's whole-word tokens (:func:`word_token_ids`): how much of what the student is taught
    is the overt naming of an animal (the trait's, or the others' for scale)."""
    ids = word_token_ids(tok)
    mass = dict.fromkeys(CANDIDATE_ANIMALS, 0.0)
    n = 0
    for field in labels:
        for t_ids, t_lp in zip(field["ids"], field["logprobs"], strict=True):
            n += 1
            for t, v in zip(t_ids, t_lp, strict=True):
                if t in ids:
                    mass[ids[t]] += math.exp(v)
    return {a: round(m / n, 8) if n else 0.0 for a, m in mass.items()}
