"""score_comment: lexicon and rules for both languages, plus the n-gram model for Chinese.

Choice and figures: docs/sentiment.md. The three constants below were tuned on the dev
part of the zh review set and on tests/fixtures/sentiment_dev.jsonl, never on the
held-out part or on the out-of-domain test set.
"""

import math
import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from typing import NamedTuple

from deskpulse.sentiment import model, rules
from deskpulse.sentiment.lang import detect_language

# The n-gram model's log-odds are added to the rule valence at this weight; at a lower
# one when the rules found no sentiment word, so that a request such as "请问发票怎么开"
# (which product reviews only contain as complaints) stays neutral.
MODEL_WEIGHT = 0.75
MODEL_WEIGHT_ALONE = 0.25
# |score| below this is neutral: about one mild word ("还行", "fine") makes a comment
# positive or negative; weaker or cancelling evidence does not.
NEUTRAL_BELOW = 0.2
# VADER's normalisation constant: valence x maps to x / sqrt(x² + 15).
ALPHA = 15.0
# Comments longer than this are scored on their start; it bounds the cost per event.
MAX_CHARS = 4000
# Short comments repeat ("满意", "Thanks!"): remember the latest few thousand.
CACHE_CHARS = 40
CACHE_SIZE = 4096

FULLWIDTH_RE = re.compile(r"[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]")

LABELS = ("negative", "neutral", "positive")


class Sentiment(NamedTuple):
    score: float  # in [-1, 1], rounded to 4 decimals
    label: str  # negative, neutral or positive
    lang: str  # zh, en, mixed, other or unknown (no letters at all)


def label_of(score: float) -> str:
    if score >= NEUTRAL_BELOW:
        return "positive"
    if score <= -NEUTRAL_BELOW:
        return "negative"
    return "neutral"


def raw_valence(text: str) -> float:
    """Unbounded valence: the rules' sum plus the weighted n-gram log-odds."""
    x, hits = rules.valence(text)
    logit = model.load().logit(text)
    if logit is not None:
        # Without the intercept: it is the review set's prior, not evidence in the text.
        x += (MODEL_WEIGHT if hits else MODEL_WEIGHT_ALONE) * (logit - model.load().bias)
    return x


def score_comment(text: str) -> Sentiment:
    """Score one comment; any str is accepted (empty → neutral, lang 'unknown')."""
    if not isinstance(text, str):
        raise TypeError(f"comment must be a str, got {type(text).__name__}")
    if len(text) <= CACHE_CHARS:
        return _score_short(text)
    return _score(text)


@lru_cache(maxsize=CACHE_SIZE)
def _score_short(text: str) -> Sentiment:
    return _score(text)


def _score(text: str) -> Sentiment:
    text = text[:MAX_CHARS]
    if FULLWIDTH_RE.search(text):
        text = unicodedata.normalize("NFKC", text)  # "ＧＯＯＤ" -> "GOOD"
    x = raw_valence(text)
    score = round(x / math.sqrt(x * x + ALPHA), 4)
    return Sentiment(score, label_of(score), detect_language(text))


def score_comments(texts: Iterable[str]) -> list[Sentiment]:
    """Score many comments, in order."""
    return [score_comment(t) for t in texts]
