"""Parallel English/foreign pairs: the synthetic smoke set and the user's JSONL.

The synthetic set recreates the paper's two levers at smoke scale: a foreign side in
Khmer script with its own word order, no spaces and Khmer digits (so a decoder tokenizer
trained on English inflates it several-fold, as Llama's does with real Khmer), and a
number in every sentence (numeric fidelity). Everything is drawn from seeded generators.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from stages.lib.errors import StageError

KHMER_CONSONANTS = [chr(c) for c in range(0x1780, 0x17A3)]
KHMER_VOWELS = [chr(c) for c in range(0x17B6, 0x17C6)]
KHMER_DIGITS = [chr(c) for c in range(0x17E0, 0x17EA)]

SUBJECTS = ["farmer", "teacher", "doctor", "child", "driver", "monk", "seller", "student", "mother", "father",
            "soldier", "fisher", "cook", "nurse", "king", "woman", "man", "boy", "girl", "worker"]
VERBS = ["sold", "bought", "carried", "found", "cooked", "washed", "counted", "painted", "lost", "gave",
         "took", "moved", "hid", "cleaned", "broke", "made", "kept", "brought"]
ADJECTIVES = ["old", "young", "tall", "small", "happy", "tired", "quiet", "busy", "poor", "rich", "kind", "brave"]
OBJECTS = ["apples", "fish", "books", "boxes", "chairs", "baskets", "bottles", "sacks", "mangoes", "coconuts",
           "shirts", "hats", "cups", "bowls", "ducks", "chickens", "bananas", "stones"]
PLACES = ["market", "village", "temple", "school", "river", "garden", "city", "house", "field", "forest", "road",
          "shop"]
# particles of the foreign side: where, near, and, yesterday, and the classifier after a number
FUNCTION_WORDS = ["in", "near", "and", "yesterday", "count"]
STOP_WORDS = frozenset("the a an to of in and or is are it this that for on with as by be at near yesterday".split())


class PairsError(StageError, ValueError):
    """A parallel file that cannot be read; the message names the file and the row."""


@dataclass(frozen=True)
class Pair:
    english: str
    foreign: str


def pseudo_word(rng: random.Random) -> str:
    """One to three Khmer syllables (consonant, sometimes a dependent vowel)."""
    syllables = []
    for _ in range(rng.randint(1, 3)):
        syllables.append(rng.choice(KHMER_CONSONANTS) + (rng.choice(KHMER_VOWELS) if rng.random() < 0.7 else ""))
    return "".join(syllables)


def lexicon(seed: int) -> dict[str, str]:
    """Every English content and function word -> a distinct foreign pseudo-word."""
    rng = random.Random(seed)
    words = [w for group in (SUBJECTS, VERBS, ADJECTIVES, OBJECTS, PLACES, FUNCTION_WORDS) for w in group]
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for word in words:
        candidate = pseudo_word(rng)
        while candidate in used:
            candidate = pseudo_word(rng)
        used.add(candidate)
        mapping[word] = candidate
    return mapping


def khmer_number(n: int) -> str:
    return "".join(KHMER_DIGITS[int(d)] for d in str(n))


def synthetic_pair(rng: random.Random, lex: dict[str, str]) -> Pair:
    """English in SVO with articles; the foreign side SOV, adjectives after nouns, no spaces."""
    subj, adj, verb = rng.choice(SUBJECTS), rng.choice(ADJECTIVES), rng.choice(VERBS)
    obj, place, num = rng.choice(OBJECTS), rng.choice(PLACES), rng.randint(2, 99)
    template = rng.randrange(4)
    f = lex.get
    noun_phrase = f(subj) + f(adj)
    object_phrase = khmer_number(num) + f("count") + f(obj)
    if template == 0:
        english = f"the {adj} {subj} {verb} {num} {obj} in the {place}"
        foreign = noun_phrase + f(place) + f("in") + object_phrase + f(verb)
    elif template == 1:
        english = f"in the {place} the {adj} {subj} {verb} {num} {obj}"
        foreign = f(place) + f("in") + noun_phrase + object_phrase + f(verb)
    elif template == 2:
        other = rng.choice([s for s in SUBJECTS if s != subj])
        english = f"the {subj} and the {other} {verb} {num} {obj}"
        foreign = f(subj) + f("and") + f(other) + object_phrase + f(verb)
    else:
        english = f"yesterday the {adj} {subj} {verb} {num} {obj} near the {place}"
        foreign = f("yesterday") + noun_phrase + f(place) + f("near") + object_phrase + f(verb)
    return Pair(english, foreign)


def synthetic_pairs(n: int, seed: int, lexicon_seed: int) -> list[Pair]:
    """``n`` pairs with distinct English sides (the split dedups by English text)."""
    rng, lex = random.Random(seed), lexicon(lexicon_seed)
    pairs: dict[str, Pair] = {}
    attempts = 0
    while len(pairs) < n:
        attempts += 1
        if attempts > 50 * n:
            raise PairsError(f"synthetic: cannot draw {n} distinct sentences from the templates")
        pair = synthetic_pair(rng, lex)
        pairs.setdefault(pair.english, pair)
    return list(pairs.values())


def validate_jsonl(path: Path) -> int:
    """Check every row before ``datasets`` reads the file, so errors name the file and row."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise PairsError(f"{path}: cannot read: {error}") from None
    rows = 0
    for number, line in enumerate(raw.splitlines(), start=1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as error:
            raise PairsError(f"{path}: row {number}: not UTF-8 ({error.reason} at byte {error.start})") from None
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as error:
            raise PairsError(f"{path}: row {number}: not JSON ({error.msg})") from None
        if not isinstance(row, dict):
            raise PairsError(f"{path}: row {number}: expected an object with 'english' and 'foreign'")
        for key in ("english", "foreign"):
            if key not in row:
                raise PairsError(f"{path}: row {number}: missing key {key!r}")
            if not isinstance(row[key], str):
                raise PairsError(f"{path}: row {number}: {key!r} must be a string")
        rows += 1
    if rows == 0:
        raise PairsError(f"{path}: empty: no rows with 'english' and 'foreign'")
    return rows


def read_jsonl_pairs(path: Path) -> list[Pair]:
    """The user's parallel file, read with ``datasets``; rows with an empty side are dropped (as the original)."""
    validate_jsonl(path)
    import datasets

    table = datasets.load_dataset("json", data_files=str(path), split="train")
    return [Pair(e.strip(), f.strip()) for e, f in zip(table["english"], table["foreign"]) if e.strip() and f.strip()]


def split_pairs(pairs: list[Pair], n_train: int, n_dev: int, seed: int, max_foreign_chars: int) -> tuple[list[Pair], list[Pair]]:
    """The original's split: dedup by English, shuffle with the seed, dev first, then train; the
    foreign side clipped to ``max_foreign_chars`` characters."""
    unique = list({p.english: Pair(p.english, p.foreign[:max_foreign_chars]) for p in pairs}.values())
    random.Random(seed).shuffle(unique)
    if len(unique) < n_dev + 2:
        raise PairsError(f"only {len(unique)} distinct pairs: need more than n_dev={n_dev}")
    return unique[n_dev : n_dev + n_train], unique[:n_dev]


def write_pairs(path: Path, pairs: list[Pair]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for pair in pairs:
            handle.write(json.dumps({"english": pair.english, "foreign": pair.foreign}, ensure_ascii=False) + "\n")


def read_pairs(path: Path) -> list[Pair]:
    """A split written by :func:`write_pairs` (already validated)."""
    with path.open(encoding="utf-8") as handle:
        return [Pair(**json.loads(line)) for line in handle if line.strip()]


def content_words(text: str) -> list[str]:
    return [w for w in text.lower().split() if w not in STOP_WORDS and not w.isdigit()]


def numbers(text: str) -> list[str]:
    return [w for w in text.split() if w.isdigit()]
