"""A small English grammar that writes varied, book-like sentences for the synthetic corpora.

Real corpora cannot ship with the project, so the demo and the tests read sentences made here:
templates with slots (people, actions, things, places, times, numbers) over a lexicon of a few
hundred words. Everything is drawn from a caller's numpy Generator, so a seed fixes the text.
Sentences keep their punctuation (TIMIT's .TXT and espeak-ng's prosody want it); transcripts are
the upper-case, punctuation-free words LibriSpeech uses.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

FIRST_NAMES_MALE = ("john", "peter", "thomas", "george", "robert", "william", "james", "edward",
                    "henry", "arthur", "charles", "frank", "walter", "albert", "richard", "samuel")
FIRST_NAMES_FEMALE = ("mary", "anna", "helen", "alice", "margaret", "elizabeth", "martha", "susan",
                      "clara", "emily", "lucy", "ruth", "grace", "dorothy", "rose", "jane")
SURNAMES = ("miller", "turner", "baker", "fletcher", "harris", "morgan", "walker", "carter",
            "hughes", "palmer", "lawson", "bennett", "fisher", "parker", "spencer", "wood")
PEOPLE = ("old man", "young woman", "captain", "doctor", "teacher", "farmer", "soldier",
          "little girl", "boy", "king", "queen", "merchant", "sailor", "priest", "stranger",
          "neighbor", "driver", "baker", "judge", "nurse", "widow", "fisherman", "musician",
          "servant")
THINGS = ("letter", "book", "basket", "key", "lamp", "horse", "boat", "window", "door", "coat",
          "ring", "table", "chair", "cup", "bottle", "map", "picture", "box", "knife", "candle",
          "clock", "hat", "wagon", "apple", "stone", "bell", "fence", "ladder", "blanket", "rope",
          "coin", "flower", "shirt", "bag", "pencil", "mirror", "barrel", "jacket", "violin",
          "umbrella", "kettle", "bucket", "saddle", "pillow", "drum", "feather")
PLURAL_EXCEPTIONS = {"box": "boxes", "knife": "knives"}
ADJECTIVES = ("old", "small", "large", "red", "green", "bright", "dark", "heavy", "broken",
              "quiet", "strange", "beautiful", "silver", "golden", "wooden", "empty", "warm",
              "cold", "narrow", "simple", "yellow", "ancient", "clean", "dusty", "gentle", "sharp",
              "soft", "tall", "white", "black", "greasy", "oily", "curious", "precious", "tiny",
              "enormous", "shiny", "familiar")
PEOPLE_ADJECTIVES = ("old", "young", "tall", "quiet", "gentle", "curious", "strange", "kind",
                     "tired", "clever")
VERBS_TRANSITIVE = ("found", "opened", "carried", "painted", "bought", "sold", "watched",
                    "lifted", "cleaned", "dropped", "repaired", "noticed", "washed", "pushed",
                    "pulled", "covered", "brought", "took", "kept", "moved", "touched", "hid",
                    "described", "followed", "remembered", "closed", "filled", "examined",
                    "borrowed", "admired", "polished", "forgot")
VERBS_INTRANSITIVE = ("walked", "waited", "laughed", "slept", "worked", "listened", "smiled",
                      "rested", "sang", "danced", "travelled", "stayed", "wandered", "returned",
                      "spoke", "prayed", "hurried", "whispered")
VERBS_BASE = ("see", "find", "carry", "open", "sell", "keep", "bring", "wash", "paint", "hide",
              "take", "move")
ADVERBS = ("slowly", "quickly", "carefully", "quietly", "suddenly", "gladly", "again", "rarely",
           "happily", "eagerly")
PLACES = ("in the kitchen", "near the river", "by the window", "at the station", "on the hill",
          "in the old church", "under the bridge", "across the street", "behind the barn",
          "in the village", "at the market", "on the ship", "in the forest", "by the sea",
          "at the edge of the town", "in the little garden", "near the gate", "along the road",
          "inside the house", "beyond the mountains", "in the city", "at the school")
TIMES = ("in the morning", "at noon", "last night", "every evening", "before dawn",
         "after dinner", "on sunday", "in the spring", "during the winter", "the next day",
         "at midnight", "in september", "a week later", "that afternoon", "long ago",
         "on monday", "all year", "in october", "this summer")
UNITS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TEENS = ("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
         "eighteen", "nineteen")
TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")

# The two TIMIT dialect sentences, read by every TIMIT speaker.
SA_SENTENCES = ("She had your dark suit in greasy wash water all year.",
                "Don't ask me to carry an oily rag like that.")

TEMPLATES = (
    "{subject} {vt} the {adj} {thing} {place}.",
    "{time}, {subject} {vi} {place}.",
    "{subject} {vt} {number} {adj} {things} {time}.",
    "the {adj} {thing} was {place} {time}.",
    "{subject} {adv} {vt} the {thing} and {vi}.",
    "{subject} said that the {thing} was {adj}.",
    "did {subject} {vb} the {adj} {thing} {place}?",
    "{subject} and {subject} {vi} {place} {time}.",
    "there were {number} {things} {place}.",
    "{subject} {vt} the {thing}, but {subject} {vi} {adv}.",
    "why was the {thing} so {adj} {time}?",
    "{time}, {subject} {vt} a {adj} {thing} and {number} {things}.",
    "{subject} {vi} {place} while {subject} {vt} the {thing}.",
    "please {vb} the {adj} {thing} {place}.",
    "{subject} {vi} {adv} {time}.",
)


@dataclass(frozen=True)
class Sentence:
    """A sentence as spoken (``text``, with case and punctuation) and as transcribed (``words``)."""

    text: str
    words: tuple[str, ...]

    @property
    def transcript(self) -> str:
        """LibriSpeech-style transcript: upper case, no punctuation."""
        return " ".join(self.words).upper()


def number_words(n: int) -> str:
    """English words for 1 <= n <= 999, as LibriSpeech transcribes numbers (no 'and', no hyphen)."""
    if not 1 <= n <= 999:
        raise ValueError(f"number out of range: {n}")
    parts = []
    if n >= 100:
        parts += [UNITS[n // 100 - 1], "hundred"]
        n %= 100
    if n >= 20:
        parts.append(TENS[n // 10 - 2])
        n %= 10
    if n >= 10:
        parts.append(TEENS[n - 10])
    elif n >= 1:
        parts.append(UNITS[n - 1])
    return " ".join(parts)


def plural(noun: str) -> str:
    return PLURAL_EXCEPTIONS.get(noun, noun + "s")


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def _subject(rng: np.random.Generator) -> str:
    if rng.random() < 0.45:
        return _pick(rng, FIRST_NAMES_MALE + FIRST_NAMES_FEMALE)
    if rng.random() < 0.3:
        return f"the {_pick(rng, PEOPLE_ADJECTIVES)} {_pick(rng, PEOPLE)}"
    return f"the {_pick(rng, PEOPLE)}"


def _number(rng: np.random.Generator) -> str:
    """Mostly small counts, sometimes two or three digit ones."""
    low, high = ((2, 13), (13, 100), (100, 1000))[int(rng.choice(3, p=[.6, .3, .1]))]
    return number_words(int(rng.integers(low, high)))


_SLOTS = {
    "subject": _subject,
    "vt": lambda rng: _pick(rng, VERBS_TRANSITIVE),
    "vi": lambda rng: _pick(rng, VERBS_INTRANSITIVE),
    "vb": lambda rng: _pick(rng, VERBS_BASE),
    "adv": lambda rng: _pick(rng, ADVERBS),
    "adj": lambda rng: _pick(rng, ADJECTIVES),
    "thing": lambda rng: _pick(rng, THINGS),
    "things": lambda rng: plural(_pick(rng, THINGS)),
    "place": lambda rng: _pick(rng, PLACES),
    "time": lambda rng: _pick(rng, TIMES),
    "number": lambda rng: _number(rng),
}
_SLOT_RE = re.compile(r"\{(\w+)\}")
_PROPER = frozenset(FIRST_NAMES_MALE + FIRST_NAMES_FEMALE)


def from_text(text: str) -> Sentence:
    """Split a written sentence into transcript words (lower case, apostrophes kept)."""
    return Sentence(text, tuple(re.findall(r"[a-z']+", text.lower())))


def random_sentence(rng: np.random.Generator) -> Sentence:
    """One sentence from a random template; only ``rng`` decides which."""
    template = _pick(rng, TEMPLATES)
    body = _SLOT_RE.sub(lambda m: _SLOTS[m.group(1)](rng), template)
    words = [w.capitalize() if w.strip(",.?") in _PROPER else w for w in body.split()]
    text = " ".join(words)
    return from_text(text[0].upper() + text[1:])


def lexicon() -> list[str]:
    """Every word the grammar can produce (and the TIMIT dialect sentences use), sorted."""
    pieces = (FIRST_NAMES_MALE + FIRST_NAMES_FEMALE + SURNAMES + PEOPLE + THINGS
              + tuple(plural(t) for t in THINGS) + ADJECTIVES + PEOPLE_ADJECTIVES
              + VERBS_TRANSITIVE + VERBS_INTRANSITIVE + VERBS_BASE + ADVERBS + PLACES + TIMES
              + UNITS + TEENS + TENS
              + ("hundred",) + SA_SENTENCES + tuple(_SLOT_RE.sub(" ", t) for t in TEMPLATES))
    return sorted({w for p in pieces for w in from_text(p).words})


def person_name(rng: np.random.Generator, sex: str) -> str:
    """A reader's name for LibriSpeech's SPEAKERS.TXT."""
    first = _pick(rng, FIRST_NAMES_FEMALE if sex == "F" else FIRST_NAMES_MALE)
    return f"{first.capitalize()} {_pick(rng, SURNAMES).capitalize()}"
