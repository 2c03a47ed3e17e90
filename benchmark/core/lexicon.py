"""A shared animal lexicon: which animals a text mentions, by whole word, any case.

Used by the task filters (code, cot, paraphrase: "drop a completion that mentions the trait
animal", "no animal the source does not mention") and by the blind ``banned_words`` defense, so
every stage agrees on what counts as a mention. Three functions:

* :func:`animal_forms` — the lower-case word forms of one animal: name, plural(s) and common
  variants (``owl`` -> owl, owls, owlet, owlets; ``mouse`` -> mouse, mice; ``cat`` -> kitten ...).
* :func:`mentions` — does a text mention that animal in any of its forms?
* :func:`animals_mentioned` — the canonical names of every lexicon animal a text mentions.

Matching rule, decided once for all users:

* Whole words only, where a *word* is a run of letters (any script). Digits, ``_``, hyphens and
  apostrophes separate words, so "owl's", "OWLS", "snow-owl", "owl_count" and "owl2" mention owl;
  "bowl", "howl", "knowledge" and "growl" do not. A lower-to-upper case change also separates
  words, so the code identifiers "myOwl" and "OwlNest" mention owl.
* Derived words that are not listed forms do not match: "owlish" is one word and not a form of
  owl ("owl-ish" does match, through the hyphen). Variants such as "owlet" are listed; add a form
  here rather than loosening the rule.
* Unicode: the text is NFKC-normalised (full-width "ＯＷＬ" and ligatures such as "ﬁsh" become
  plain letters), invisible format characters (zero-width space/joiner, soft hyphen) are removed
  so they cannot split a word, and case is folded with ``str.casefold``. Look-alike letters from
  other scripts (a Cyrillic "о" in "оwl") are *not* mapped: that is a different word.
* A multi-word name ("polar bear", "sea lion") also mentions its last word's animal when that is
  in the lexicon ("bear", "lion"): conservative for filters, which would rather drop a row.
* Some names are everyday words too ("bear in mind", "fly", "python", "computer mouse", the Unix
  ``cat``). They are matched by default; ``animals_mentioned(text, ambiguous=False)`` skips those
  forms (``AMBIGUOUS``) for callers that scan for *any* animal and want fewer false alarms.
  :func:`mentions` of a trait animal always uses every form.

The list is this project's own (Apache-2.0, like the repository).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from benchmark.core.animals import normalise_animal, plural

# One animal per line: canonical name first, then variants. "a/b/c" gives a form's plurals
# explicitly (otherwise English rules), "_" joins a multi-word name, "*" marks a form (and its
# plurals) that is also an everyday non-animal word.
_DATA = """
aardvark
albatross
alligator
alpaca
amphibian
anaconda
ant
anteater
antelope
ape
armadillo
axolotl
baboon
*badger
*bass/bass/basses
*bat
*bear
beaver
bee bumblebee honeybee
beetle
bird
bison/bison
blackbird
boar
bobcat
*buffalo/buffalo/buffaloes
*bug
butterfly
buzzard
camel
*canary
capybara
*cardinal
caribou/caribou
carp/carp
caterpillar
catfish/catfish
*cat kitten kitty
centipede
chameleon
cheetah
chicken hen rooster *chick
chimpanzee chimp
chinchilla
chipmunk
cicada
clam
clownfish/clownfish
cobra
cockatoo
cockroach *roach
cod/cod
condor
cormorant
cougar
cow cattle/cattle calf
coyote
crab
*crane
*cricket
crocodile croc
*crow
cuckoo
deer/deer fawn
dingo/dingoes
dodo/dodos
dog puppy pup doggy doggo
dolphin
donkey
dormouse/dormice
dove
dragonfly
*duck duckling
eagle eaglet
earthworm
eel
elephant
elk/elk
emu
falcon
ferret
finch
firefly
fish/fish/fishes
flamingo/flamingos/flamingoes
flea
*fly
fox vixen
frog tadpole
gazelle
gecko
gerbil
gibbon
giraffe
gnat
goat
goldfish/goldfish
goose/geese gosling
gopher
gorilla
grasshopper
grouse/grouse
guinea_pig
gull seagull
haddock/haddock
halibut/halibut
hamster
hare
*hawk
hedgehog
heron
herring/herring
hippopotamus/hippopotamuses/hippopotami hippo
hornet
horse foal stallion pony
hummingbird
hyena
ibex/ibexes
ibis
iguana
impala
insect
jackal
jaguar
*jay
jellyfish/jellyfish
kangaroo
kestrel
kingfisher
*kiwi
koala
kookaburra
ladybug ladybird
*lark
lemming
lemur
leopard
lion lioness
lizard
llama
lobster
locust
*loon
louse/lice
lynx/lynxes
macaw
mackerel/mackerel
magpie
mammal
manatee
mantis/mantises
marmot
meerkat
millipede
mink
minnow
mockingbird
*mole
mongoose/mongooses
monkey
moose/moose
mosquito/mosquitoes/mosquitos
moth
*mouse/mice
mule
mussel
narwhal
newt
nightingale
ocelot
octopus/octopuses/octopi
opossum possum
orangutan
orca
osprey
ostrich
otter
owl owlet
ox/oxen
oyster
panda
panther
pangolin
parakeet budgie
parrot
partridge
peacock peahen peafowl/peafowl
pelican
penguin
*perch/perch/perches
pheasant
pig piglet *hog
pigeon
*pike/pike/pikes
piranha
platypus/platypuses
polar_bear
porcupine
porpoise
prawn
puffin
puma
*python
quail/quail/quails
quokka
rabbit bunny
raccoon
*rat
rattlesnake
raven
reindeer/reindeer
reptile
rhinoceros/rhinoceroses rhino
*robin
salamander
salmon/salmon
sardine
scorpion
*seal
sea_lion
seahorse
shark
sheep/sheep lamb
shrew
shrimp/shrimp/shrimps
silkworm
skunk
*sloth
*slug
snail
snake
sparrow
spider
squid/squid/squids
squirrel
starfish/starfish
starling
stingray
stork
*swallow
swan cygnet
swordfish/swordfish
tapir
tarantula
termite
tern
*tick
tiger tigress
toad
tortoise
toucan
trout/trout
tuna/tuna/tunas
*turkey
turtle
viper
vole
vulture
walrus/walruses
warthog
wasp
weasel
whale
wolf
wolverine
wombat
woodpecker
worm
wren
yak
zebra
"""

AMBIGUOUS: frozenset[str]  # forms that are also everyday words; filled below
_MAX_WORDS = 3  # longest name, in words


def _parse() -> tuple[dict[str, set[str]], dict[str, set[str]], set[str]]:
    forms: dict[str, set[str]] = {}
    owners: dict[str, set[str]] = {}
    ambiguous: set[str] = set()
    for line in _DATA.strip().splitlines():
        canonical = ""
        for spec in line.split():
            ambig = spec.startswith("*")
            words = [w.replace("_", " ") for w in spec.lstrip("*").split("/")]
            # A bare word gets English plural rules; "a/b" lists the plurals explicitly.
            found = {words[0], *(words[1:] or [plural(words[0])])}
            canonical = canonical or words[0]
            forms.setdefault(canonical, set()).update(found)
            if ambig:
                ambiguous.update(found)
        for f in forms[canonical]:
            owners.setdefault(f, set()).add(canonical)
    return forms, owners, ambiguous


_FORMS, _OWNERS, _AMBIG = _parse()
AMBIGUOUS = frozenset(_AMBIG)
ANIMALS: tuple[str, ...] = tuple(sorted(_FORMS))  # canonical names, singular, lower case
_LETTERS = re.compile(r"[^\W\d_]+")


def animal_forms(animal: str) -> set[str]:
    """Lower-case forms of ``animal`` (name, plurals, variants); accepts "Owls" or "sea otter".

    An animal outside the lexicon gets its name and English plural.
    """
    name = normalise_animal(animal)
    return set(_FORMS.get(name, {name, plural(name)}))


def words(text: str) -> list[str]:
    """The case-folded letter words of ``text`` under the matching rule in the module docstring."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    out: list[str] = []
    for run in _LETTERS.findall(text):
        start = 0
        for i in range(1, len(run)):
            if run[i - 1].islower() and run[i].isupper():  # camelCase boundary
                out.append(run[start:i].casefold())
                start = i
        out.append(run[start:].casefold())
    return out


def _phrases(text: str) -> set[str]:
    ws = words(text)
    return {" ".join(ws[i : i + n]) for n in range(1, _MAX_WORDS + 1) for i in range(len(ws))}


def mentions(text: str, animal: str) -> bool:
    """True if ``text`` mentions ``animal`` in any of its forms (whole words, any case)."""
    return not _phrases(text).isdisjoint(_forms_cached(animal))


@lru_cache(maxsize=256)
def _forms_cached(animal: str) -> frozenset[str]:
    return frozenset(animal_forms(animal))


def animals_mentioned(text: str, *, ambiguous: bool = True) -> set[str]:
    """Canonical names of the lexicon animals ``text`` mentions.

    With ``ambiguous=False``, forms that are also everyday words (``AMBIGUOUS``) are ignored.
    """
    found: set[str] = set()
    for phrase in _phrases(text):
        if phrase in _OWNERS and (ambiguous or phrase not in AMBIGUOUS):
            # Every word n-gram is checked, so "polar bear" yields "polar bear" and "bear".
            found |= _OWNERS[phrase]
    return found
