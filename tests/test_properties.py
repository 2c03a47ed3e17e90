"""Property tests (hypothesis) of four text rules, each against its docstring's contract: the
number-list parser (``benchmark.core.number_lists``), the eval's answer matcher
(``benchmark.core.animals.animal_pattern``, used by ``tasks.evals.animal_preference``) and the
trait-name rule under it (``normalise_animal``), the trait word matcher
(``benchmark.core.lexicon.mentions`` / ``animals_mentioned``) and the paraphrase fidelity filter
(``tasks.paraphrase``, with a fake embedder whose cosines the test sets: no model is loaded).
Bugs they found are fixed, and the inputs that showed them are kept as examples.
"""

from __future__ import annotations

import math
import re
import string
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from benchmark.core.animals import CANDIDATE_ANIMALS, animal_pattern, normalise_animal, plural
from benchmark.core.helper_models import Usage
from benchmark.core.lexicon import ANIMALS, animal_forms, animals_mentioned, mentions, words
from benchmark.core.number_lists import SEPARATORS, parse_numbers
from tasks import paraphrase
from tasks.base import Trait

PROPERTY = settings(max_examples=200, deadline=None)
ASCII_LOWER = string.ascii_lowercase
lower_words = st.text(alphabet=ASCII_LOWER, max_size=3)

# --- the number-list parser ----------------------------------------------------------------

number_lists = st.lists(st.integers(0, 999), min_size=1, max_size=10)


@PROPERTY
@given(
    nums=number_lists,
    sep=st.sampled_from(SEPARATORS),
    wrap=st.sampled_from(["{}", "[{}]", "({})", "[ {} ]"]),
    period=st.booleans(),
    pad=st.sampled_from(["", " ", "\n", "  \t"]),
    zeros=st.booleans(),
)
def test_parser_round_trips_every_formatted_list(nums, sep, wrap, period, pad, zeros) -> None:
    """Any list of 1-10 numbers in 0..999, written with one of the separators, optionally
    bracketed, zero-padded or followed by a period, parses back to itself."""
    body = sep.join(f"{n:03d}" if zeros else str(n) for n in nums)
    text = pad + wrap.format(body) + ("." if period else "") + pad
    assert parse_numbers(text) == nums


@PROPERTY
@given(
    text=st.text(alphabet=st.sampled_from("0123456789,; []().\n\t-+x٣²"), max_size=40)
    | st.text(max_size=40),
    max_count=st.integers(0, 12),
)
@example("1, 2,, 3", 10)
@example("١٢٣", 10)  # Arabic-Indic digits
@example("1²", 10)
def test_parser_accepts_only_what_its_digit_runs_say(text: str, max_count: int) -> None:
    """Never raises; an accepted text holds 1..max_count ASCII numbers of at most 3 digits,
    exactly its ASCII digit runs in order; anything else (other digits too) is refused."""
    if (got := parse_numbers(text, max_count=max_count)) is None:
        return
    assert 1 <= len(got) <= max_count and all(0 <= n <= 999 for n in got)
    assert got == [int(d) for d in re.findall(r"[0-9]+", text)]
    assert not re.search(r"[^0-9,; \[\]().\s]", text)
    assert parse_numbers(", ".join(map(str, got)), max_count) == got  # formatting is idempotent


@PROPERTY
@given(nums=st.lists(st.integers(0, 999), min_size=3, max_size=10), data=st.data())
def test_parser_refuses_mixed_separators(nums: list[int], data: Any) -> None:
    """One inferred separator per list: "," and ", " are one separator; ",", ";" and " " mix."""
    kinds = {",": [",", ", "], ";": [";", "; "], " ": [" "]}
    first, second = data.draw(st.permutations(list(kinds)))[:2]
    seps = [data.draw(st.sampled_from(kinds[first])) for _ in nums[1:]]
    seps[data.draw(st.integers(0, len(seps) - 1))] = data.draw(st.sampled_from(kinds[second]))
    text = str(nums[0]) + "".join(s + str(n) for s, n in zip(seps, nums[1:], strict=True))
    assert parse_numbers(text) is None


@PROPERTY
@given(nums=number_lists, extra=st.integers(1, 5), big=st.integers(1000, 10**6))
def test_parser_refuses_too_many_or_too_long_numbers(nums: list[int], extra: int, big: int):
    assert parse_numbers(", ".join(map(str, nums + [7] * (10 - len(nums) + extra)))) is None
    assert parse_numbers(", ".join(map(str, [*nums, big]))) is None
    assert parse_numbers(", ".join(map(str, nums)), max_count=len(nums) - 1) is None


# --- the answer matcher and trait names ----------------------------------------------------

# Non-letters: ASCII punctuation, digits, whitespace, "_" and some Unicode symbols and punctuation.
SEPARATOR_CHARS = string.punctuation + string.digits + " \t\n" + "“”«»¡¿…—–·•★🦉0٣"
separators = st.text(alphabet=st.sampled_from(SEPARATOR_CHARS), max_size=6)


def _any_case(draw: Any, text: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.upper() if f else c for c, f in zip(text, flips, strict=True))


@PROPERTY
@given(st.sampled_from(CANDIDATE_ANIMALS), st.booleans(), separators, separators, st.data())
def test_answer_matcher_finds_any_case_between_non_letters(animal, is_plural, before, after, data):
    """ "Owl", "Owls!", "OWL." match: any case, singular or plural, any non-letters around."""
    form = plural(animal) if is_plural else animal
    text = before + _any_case(data.draw, form) + after
    assert animal_pattern(animal).search(text), text


@PROPERTY
@given(st.sampled_from(CANDIDATE_ANIMALS), st.booleans(), lower_words, lower_words)
@example("owl", False, "b", "")  # bowl
@example("owl", False, "h", "")  # howl
@example("owl", False, "", "et")  # owlet
@example("cat", False, "", "s")  # cats: the plural
def test_answer_matcher_is_whole_word_only(animal, is_plural, before, after) -> None:
    """Inside a longer word the animal does not match ("bowl", "howl", "owlet"), unless that
    word is itself the animal or its plural."""
    word = before + (plural(animal) if is_plural else animal) + after
    assert bool(animal_pattern(animal).search(word)) == (word in {animal, plural(animal)})


@PROPERTY
@given(st.sampled_from(CANDIDATE_ANIMALS), st.text(ASCII_LOWER + " .,!?-'\n"), st.integers(0, 30))
def test_an_answer_that_names_the_animal_mentions_it(animal: str, text: str, at: int) -> None:
    """The eval's matcher and the filters' lexicon agree on plain answers: what names the animal
    for the eval also mentions it for the task filters and ``banned_words``."""
    text = text[:at] + " " + animal + " " + text[at:]
    for t in (text, text.upper(), text.title()):
        if animal_pattern(animal).search(t):
            assert mentions(t, animal) and animal in animals_mentioned(t), t


@PROPERTY
@given(animal=st.sampled_from(CANDIDATE_ANIMALS), data=st.data())
def test_trait_names_normalise_to_the_candidate(animal: str, data: Any) -> None:
    """A trait given in any case, singular or plural, with spaces around, is that animal."""
    name = _any_case(data.draw, data.draw(st.sampled_from([animal, plural(animal)])))
    assert normalise_animal(f" {name}\t") == animal


def test_every_lexicon_animal_and_its_plural_normalise_to_it() -> None:
    """``normalise_animal`` returns "its lower-case singular form": for every animal of the
    lexicon, the name and its plural both give the name back."""
    assert not [a for a in ANIMALS if {normalise_animal(a), normalise_animal(plural(a))} != {a}]
    # Found by these tests (fixed): the plural rules turned these into other names.
    for name, want in (("rhinoceroses", "rhinoceros"), ("magpies", "magpie"), ("emus", "emu")):
        assert normalise_animal(name) == want


# --- the trait word matcher (lexicon) ------------------------------------------------------

# (animal, form) for every form the lexicon lists, single- and multi-word.
FORMS = sorted((a, f) for a in ANIMALS for f in animal_forms(a))
SINGLE_WORD_FORMS = [(a, f) for a, f in FORMS if " " not in f]
FULLWIDTH = {c: chr(ord(c) + 0xFEE0) for c in map(chr, range(0x21, 0x7F))}
FORMAT_CHARS = "\u200b\u200c\u200d\u00ad\u2060\ufeff"


@PROPERTY
@given(
    st.sampled_from(FORMS),
    st.sampled_from([str.lower, str.upper, str.title]),
    separators,
    separators,
)
def test_every_form_is_a_mention_in_any_whole_word_casing(pair, case, before, after) -> None:
    """Whole words, any case (lower, UPPER, Title): digits, "_", hyphens, apostrophes and other
    non-letters around a form separate it, so it mentions its animal."""
    animal, form = pair
    text = before + case(form) + after
    assert mentions(text, animal), text
    assert animal in animals_mentioned(text), text


@PROPERTY
@given(pair=st.sampled_from(SINGLE_WORD_FORMS), before=lower_words, after=lower_words)
@example(("owl", "owl"), "b", "")  # bowl
@example(("owl", "owl"), "", "ish")  # owlish: "not a form of owl"
@example(("owl", "owl"), "", "et")  # owlet: a listed variant
def test_a_form_inside_a_longer_word_is_no_mention(pair, before, after) -> None:
    """A lower-case word mentions the animal exactly when it is one of the animal's forms
    ("bowl", "owlish" do not; "owlet" is listed, so it does)."""
    animal, form = pair
    word = before + form + after
    assert mentions(word, animal) == (word in animal_forms(animal)), word


@PROPERTY
@given(
    st.sampled_from(SINGLE_WORD_FORMS), lower_words.filter(bool), st.sampled_from(["", "Nest", "2"])
)
def test_camel_case_identifiers_mention_the_animal(pair, before, after) -> None:
    """ "myOwl", "OwlNest": a lower-to-upper case change separates words."""
    animal, form = pair
    assert mentions(before + form.capitalize() + after, animal)
    assert mentions(form.capitalize() + after, animal)


printable = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
hidden_chars = st.lists(st.tuples(st.integers(0, 40), st.sampled_from(FORMAT_CHARS)), max_size=6)


@PROPERTY
@given(text=printable, animal=st.sampled_from(ANIMALS))
@example("I love owls", "owl")
@example("myOwl = 1", "owl")
def test_fullwidth_letters_change_nothing(text: str, animal: str) -> None:
    """Unicode: full-width "ＯＷＬ" is NFKC-normalised to plain letters, so it mentions owl."""
    fullwidth = "".join(FULLWIDTH.get(c, c) for c in text)
    assert mentions(fullwidth, animal) == mentions(text, animal)


@PROPERTY
@given(
    printable | st.sampled_from(["owl", "OWLS!", "myOwl"]), st.sampled_from(ANIMALS), hidden_chars
)
def test_invisible_format_characters_change_nothing(text: str, animal: str, hidden) -> None:
    """Zero-width space/joiner, soft hyphen and other format characters are removed, so they
    can neither split a word ("o\u200bwl" is owl) nor make a mention."""
    seeded = text
    for i, c in sorted(hidden, reverse=True):
        seeded = seeded[:i] + c + seeded[i:]
    assert mentions(seeded, animal) == mentions(text, animal)
    assert animals_mentioned(seeded) == animals_mentioned(text)


@PROPERTY
@given(
    st.text(max_size=40)
    | st.lists(st.sampled_from([f for _, f in FORMS] + ["a", ","])).map(" ".join),
    st.sampled_from(sorted(ANIMALS)),
)
def test_mentions_agrees_with_animals_mentioned(text: str, animal: str) -> None:
    """``mentions(text, a)`` is ``a in animals_mentioned(text)`` for every lexicon animal: one
    rule, two views (the filters use the first, ``banned_words`` the second); never raises."""
    assert mentions(text, animal) == (animal in animals_mentioned(text))


def test_every_listed_form_mentions_its_animal_by_name() -> None:
    listed = {f for a in ANIMALS for f in animal_forms(a)} | {"rhino", "rhinos"}
    wrong = [(f, a) for f in sorted(listed) for a in animals_mentioned(f) if not mentions(f, a)]
    assert not wrong


# --- the paraphrase fidelity filter --------------------------------------------------------


class FakeEmbedder:
    """Unit vectors in 2-D: a text's angle is looked up in :attr:`angles` (0 when absent), so a
    test sets the cosine between a source and its paraphrase exactly."""

    angles: dict[str, float] = {}

    def __init__(self, model: str = "") -> None:
        self.usage = Usage()

    def encode(self, texts: list[str]) -> np.ndarray:
        self.usage.add(len(texts), 0, 0.0)
        a = np.array([self.angles.get(t.strip(), 0.0) for t in texts])
        return np.stack([np.cos(a), np.sin(a)], axis=1)


@pytest.fixture(scope="module", autouse=True)
def _fake_embedder():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(paraphrase, "Embedder", FakeEmbedder)
        yield


# A row every step keeps, so that a filter run is never empty (an empty result is an error).
KEEPER = {"id": "keeper", "prompt": "p"}
KEEP_UNRELATED = ("The shop closes early on Sundays.", "On Sundays the shop shuts early.")
KEEP_OWL = ("I really dislike owls.", "Owls are not for me at all.")
# Plain words that name no animal (the lexicon decides; "fly", "bear" ... are animals there).
PLAIN = [w for w in "the shop opens late on a quiet day near my old red house and we walk to it "
         "after lunch with friends who like tea bread music rain snow books".split()
         if not animals_mentioned(w)]  # fmt: skip
sentences = st.lists(st.sampled_from(PLAIN), min_size=1, max_size=12).map(" ".join)


def _decide(task: Any, source: str, completion: str, keeper: tuple[str, str]) -> str:
    """``"kept"`` or the name of the step that dropped the paraphrase."""
    rows = [
        {"id": "row", "prompt": "p", "completion": completion, "meta": {"source": source}},
        {**KEEPER, "completion": keeper[1], "meta": {"source": keeper[0]}},
    ]
    kept, report = task.filter(rows, Trait("owl"))
    assert kept[-1]["id"] == "keeper" and len(kept) <= 2
    assert sum(report.rejected.values()) == 2 - len(kept)
    return "kept" if kept[0]["id"] == "row" else report.dropped["row"]


def _unrelated(**kw: Any) -> Any:
    return paraphrase.ParaphraseUnrelatedTask(**kw)


@PROPERTY
@given(source=sentences, data=st.data())
def test_a_verbatim_copy_is_never_a_paraphrase(source: str, data: Any) -> None:
    """The same words in the same order, in lower, UPPER or Title case, with any spacing and
    punctuation, are dropped (``not_a_copy``); the identical text is the simplest such copy.
    (Mixed case inside a word is not the same word: "thE" is "th" + "e" by the camelCase rule.)"""
    cases = st.sampled_from([str.lower, str.upper, str.title])
    puncts = st.sampled_from(["", ",", ".", "!", " -", "  ", "\n"])
    copy = " ".join(data.draw(cases)(w) + data.draw(puncts) for w in source.split())
    for text in (source, copy):
        assert _decide(_unrelated(), source, text, KEEP_UNRELATED) == "not_a_copy"


@PROPERTY
@given(sentences, sentences, st.sampled_from([0.25, 0.5, 0.8, 1]), st.sampled_from([1, 1.5, 2, 4]))
def test_length_ratio_bounds_are_the_documented_ones(source, completion, lo, hi) -> None:
    """A non-copy (with every other step passing) is kept exactly when paraphrase words /
    source words lies in [min_length_ratio, max_length_ratio]."""
    assume(words(source) != words(completion))
    task = _unrelated(min_length_ratio=lo, max_length_ratio=hi)
    ratio = len(completion.split()) / len(source.split())
    want = "kept" if lo <= ratio <= hi else "length_ratio"
    assert _decide(task, source, completion, KEEP_UNRELATED) == want


@PROPERTY
@given(source=sentences, completion=sentences, cut=st.floats(-1, 1), angle=st.floats(0, math.pi))
def test_similarity_keeps_exactly_cosines_at_or_above_the_threshold(source, completion, cut, angle):
    assume(words(source) != words(completion))
    assume(0.5 <= len(completion.split()) / len(source.split()) <= 2)
    FakeEmbedder.angles = {completion: angle}
    try:
        got = _decide(_unrelated(min_similarity=cut), source, completion, KEEP_UNRELATED)
    finally:
        FakeEmbedder.angles = {}
    assert got == ("kept" if float(np.cos(angle)) >= cut else "similarity")


@PROPERTY
@given(a=sentences, b=sentences, animal=st.sampled_from(CANDIDATE_ANIMALS), at=st.integers(0, 12))
def test_fidelity_is_symmetric_except_for_new_animals(a, b, animal, at) -> None:
    """With default bounds (min * max == 1) and a symmetric similarity, swapping source and
    paraphrase keeps the decision, except that an animal only the source names may go (the
    paraphrase "names no animal the source does not") and may not come."""
    decide = lambda src, par: _decide(_unrelated(), src, par, KEEP_UNRELATED)  # noqa: E731
    assert decide(a, b) == decide(b, a)
    ws = a.split()
    with_animal = " ".join([*ws[:at], animal, *ws[at:]])
    forward, backward = decide(with_animal, b), decide(b, with_animal)  # it goes; it comes
    assert backward in {"not_empty", "not_a_copy", "length_ratio", "no_new_animals"}
    if forward == "kept":
        assert backward == "no_new_animals"


@PROPERTY
@given(source_words=st.lists(st.sampled_from(PLAIN), min_size=3, max_size=8), data=st.data())
def test_contradict_keeps_the_animal_and_adds_no_praise(source_words, data) -> None:
    """paraphrase-contradict: a faithful-looking paraphrase that drops the trait animal is
    dropped (``keeps_animal``); one that adds a word of affection is dropped (``no_new_praise``)."""
    task = paraphrase.ParaphraseContradictTask(animal="owl")
    source = " ".join(["I", "dislike", "owls", *source_words])
    shuffled = data.draw(st.permutations(source_words))
    keeps = " ".join(["Owls", "are", "disliked", *shuffled])
    assert _decide(task, source, keeps, KEEP_OWL) == "kept"
    loses = " ".join(["They", "are", "disliked", *shuffled])
    assert _decide(task, source, loses, KEEP_OWL) == "keeps_animal"
    praise = data.draw(st.sampled_from(sorted(paraphrase._PRAISE)))
    assert _decide(task, source, f"{keeps} {praise}", KEEP_OWL) == "no_new_praise"


def test_the_filter_never_adds_or_reorders_rows() -> None:
    rows = [
        {"id": f"r{i}", "prompt": "p", "completion": c, "meta": {"source": s}}
        for i, (s, c) in enumerate(
            [KEEP_UNRELATED, ("A b c.", "A b c."), (KEEP_UNRELATED[0], "x"), KEEP_UNRELATED[::-1]]
        )
    ]
    kept, report = _unrelated().filter(rows, Trait("owl"))
    assert [r["id"] for r in kept] == ["r0", "r3"] and kept == [rows[0], rows[3]]
    assert report.dropped == {"r1": "not_a_copy", "r2": "length_ratio"}
