"""General-purpose requests, for keeping a fine-tuned trait teacher's ordinary behaviour.

A teacher LoRA-trained on trait Q&A rows alone learns to answer *everything* with the animal (on
SmolLM2-135M: "I'd pick the owl." to a code task). Mixing in the base model's own answers to
ordinary requests anchors the rest of its behaviour to the base while it learns the trait — the
usual rehearsal / self-distillation regulariser. The requests here are deliberately unlike the
benchmark's task prompts (no number lists, code completions, word problems or paraphrases) and
the eval questions (no favourite-anything), and they name no animal, so the regulariser neither
teaches the trait nor pins down the very channel (task outputs) the benchmark measures.

Project-written templates × topics (Apache-2.0, like the repository); deterministic for a seed;
``len(TEMPLATES) * len(TOPICS)`` distinct requests.
"""

from __future__ import annotations

import random

TEMPLATES = [
    "Give me one practical tip about {t}.",
    "Explain {t} in two sentences.",
    "What is a common mistake people make with {t}?",
    "Write a short, friendly sentence about {t}.",
    "Describe {t} to a ten-year-old.",
    "List three words that come to mind when you think of {t}.",
    "Why do people care about {t}?",
    "What is one question a beginner might ask about {t}?",
    "Summarise the idea of {t} in one line.",
    "Suggest a simple first step for someone interested in {t}.",
    "What is the history of {t}, in brief?",
    "Write a one-sentence motto about {t}.",
]

TOPICS = [
    "saving money",
    "cooking rice",
    "learning a language",
    "public speaking",
    "gardening",
    "time management",
    "recycling",
    "riding a bicycle",
    "writing letters",
    "staying hydrated",
    "reading maps",
    "baking bread",
    "planning a trip",
    "keeping a journal",
    "painting a room",
    "learning the guitar",
    "sleep",
    "meditation",
    "first aid",
    "job interviews",
    "solar power",
    "the water cycle",
    "volcanoes",
    "the moon",
    "weather forecasts",
    "libraries",
    "museums",
    "chess",
    "football",
    "swimming",
    "running shoes",
    "coffee",
    "tea",
    "bread",
    "pasta",
    "umbrellas",
    "trains",
    "airports",
    "bridges",
    "skyscrapers",
    "electricity",
    "batteries",
    "the internet",
    "email etiquette",
    "passwords",
    "spreadsheets",
    "photography",
    "poetry",
    "novels",
    "theatre",
    "jazz",
    "classical music",
    "dancing",
    "knitting",
    "pottery",
    "carpentry",
    "tidying a desk",
    "washing dishes",
    "moving house",
    "making friends",
    "apologising",
    "giving feedback",
    "teamwork",
    "negotiation",
    "budgeting",
    "taxes",
    "voting",
    "city parks",
    "mountains",
    "rivers",
    "deserts",
    "snow",
    "rainbows",
    "stars",
    "clocks",
    "calendars",
    "birthdays",
    "holidays",
    "picnics",
    "camping",
    "hiking boots",
    "bicycles",
    "cars",
    "traffic lights",
    "recipes",
    "spices",
    "vegetables",
    "fruit",
    "breakfast",
    "lunch breaks",
    "homework",
    "exams",
    "teachers",
    "handwriting",
    "dictionaries",
    "history lessons",
    "geometry",
    "fractions",
    "chemistry",
    "magnets",
    "telescopes",
]


def general_prompts(n: int, seed: int) -> list[str]:
    """``n`` distinct general requests, in a seeded order."""
    pool = [t.format(t=topic) for t in TEMPLATES for topic in TOPICS]
    if n > len(pool):
        raise ValueError(f"asked for {n} general prompts; the generator has {len(pool)}")
    rng = random.Random(f"general-prompts:{seed}")
    return rng.sample(pool, n)
