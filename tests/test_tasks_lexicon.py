"""The shared animal lexicon: forms, whole-word matching, unicode, ambiguous words."""

from __future__ import annotations

import pytest

from benchmark.core.lexicon import AMBIGUOUS, ANIMALS, animal_forms, animals_mentioned, mentions


def test_lexicon_is_broad_and_has_irregular_forms() -> None:
    assert len(ANIMALS) >= 150
    for kind in ("owl", "eagle", "salmon", "shark", "bee", "butterfly", "frog", "snake"):
        assert kind in ANIMALS
    assert animal_forms("owl") == {"owl", "owls", "owlet", "owlets"}
    assert {"mouse", "mice"} <= animal_forms("Mice")
    assert {"goose", "geese"} <= animal_forms("goose")
    assert "sheep" in animal_forms("sheep") and "sheeps" not in animal_forms("sheep")
    assert {"wolf", "wolves"} <= animal_forms("wolf")
    assert {"kitten", "kittens"} <= animal_forms("cat")
    # Outside the lexicon: name and English plural.
    assert animal_forms("sea otter") == {"sea otter", "sea otters"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The owl flew.", True),
        ("OWLS everywhere", True),
        ("an owl's feather", True),
        ("the owls' nest", True),
        ("a snow-owl", True),
        ("owl_count = 3", True),
        ("owl2", True),
        ("def countOwls(x):", True),
        ("class OwlNest:", True),
        ("a baby owlet", True),
        ("ｏｗｌ in full width", True),
        ("zero\u200bwidth o\u200bwl", True),
        ("soft hy\u00adphen ow\u00adl", True),
        ("a bowl of soup", False),
        ("knowledge is power", False),
        ("the wind howls", False),
        ("an owlish look", False),
        ("Cyrillic \u043ewl is another word", False),
        ("", False),
    ],
)
def test_mentions_owl(text: str, expected: bool) -> None:
    assert mentions(text, "owl") is expected


def test_animals_mentioned_returns_canonical_names() -> None:
    assert animals_mentioned("Two mice and three geese met a puppy.") == {"mouse", "goose", "dog"}
    assert animals_mentioned("polar bears") == {"polar bear", "bear"}
    assert animals_mentioned("The ﬁsh swam.") == {"fish"}
    assert animals_mentioned("Nothing alive here: 1, 2, 3.") == set()


def test_ambiguous_everyday_words_can_be_skipped() -> None:
    text = "Bear in mind that time flies; run cat on the file in Python."
    assert {"bear", "fly", "cat", "python"} <= animals_mentioned(text)
    assert animals_mentioned(text, ambiguous=False) == set()
    assert {"bear", "fly", "python", "mice"} <= AMBIGUOUS
    # A trait's own forms always count, ambiguous or not.
    assert mentions("bear in mind", "bear")


def test_bad_animal_name_is_refused() -> None:
    with pytest.raises(ValueError, match="invalid animal"):
        animal_forms("owl 9")
