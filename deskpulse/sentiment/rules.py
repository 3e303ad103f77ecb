"""Lexicon and rules: VADER's scheme applied to English words and Chinese segments alike.

Each sentiment word contributes its valence, changed by the few tokens before it in the
same clause (boosters add, negators flip); within a sentence, words after a contrast word
count 1.5 times and words before it half; exclamation marks add emphasis. The sum is the
raw valence that scorer.py squashes into [-1, 1]. Chinese text is cut into lexicon terms
by forward maximum matching; the text between terms carries no sentiment.
"""

import re
from functools import cache

from deskpulse.sentiment import lexicon

CLAUSE = "<,>"  # stops the look-back for negators and boosters
SENTENCE = "<.>"  # also bounds the reach of a contrast word
CAPS_BOOST = 0.733
EXCLAIM_BOOST = 0.292
DECAY = (1.0, 1.0, 0.95, 0.9)  # booster weight by distance 1, 2, 3 (index 0 unused)
# Look back over three words; a Han character outside known terms counts half a word,
# so "没有想象的那么好" still reaches its negator.
WINDOW = 3.0
SENTENCE_END_RE = re.compile(r"[.!?\n\u3002\uff01\uff1f\u2026]")

TOKEN_RE = re.compile(
    r"(?P<skip>https?://\S+|www\.\S+|[A-Za-z0-9_.+-]+@[A-Za-z0-9-]+\.[A-Za-z0-9.]+|@\w+)"
    r"|(?P<han>[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+)"
    r"|(?P<word>[A-Za-z]+(?:['\u2019][A-Za-z]+)?)"
    r"|(?P<emoticon>(?<!\w)[:;=][-']?[()\[\]DPp/\\|]|<3)"
    r"|(?P<stop>[,.;:!?\n\uff0c\u3002\uff1b\uff1a\uff01\uff1f\u3001\u2026~\uff5e]+)"
    r"|(?P<other>[^\sA-Za-z0-9])"
)


class Tables:
    """All lookups merged: Chinese and English words never collide, so one dict each."""

    def __init__(self) -> None:
        self.words = {**lexicon.english(), **lexicon.chinese()}
        self.negators = {**lexicon.NEGATORS_EN, **lexicon.NEGATORS_ZH}
        self.boosters = {**lexicon.BOOSTERS_EN, **lexicon.BOOSTERS_ZH}
        self.bigrams = frozenset(w for w in (*self.words, *self.boosters) if " " in w)
        zh_terms = {
            w
            for w in (
                *lexicon.chinese(),
                *lexicon.NEGATORS_ZH,
                *lexicon.BOOSTERS_ZH,
                *lexicon.CONTRAST,
                *lexicon.QUESTION_PARTICLES,
            )
            if not w.isascii()
        }
        self.zh_terms = frozenset(zh_terms)
        # Candidate lengths per first character, longest first; a regex jumps (in C) to
        # the next character that can start a term, so unknown text costs little.
        lengths: dict[str, set[int]] = {}
        for term in zh_terms:
            lengths.setdefault(term[0], set()).add(len(term))
        self.zh_lengths = {c: sorted(ls, reverse=True) for c, ls in lengths.items()}
        self.zh_start = re.compile("[" + "".join(sorted(lengths)) + "]")


@cache
def tables() -> Tables:
    return Tables()


def segment_zh(run: str, t: Tables) -> list[str]:
    """Forward maximum matching against the lexicon; text between terms stays in one piece."""
    out = []
    i = done = 0
    n = len(run)
    while (m := t.zh_start.search(run, i)) is not None:
        i = m.start()
        for size in t.zh_lengths[run[i]]:
            if i + size <= n and run[i : i + size] in t.zh_terms:
                if done < i:
                    out.append(run[done:i])
                out.append(run[i : i + size])
                i = done = i + size
                break
        else:
            i += 1
    if done < n:
        out.append(run[done:])
    return out


def tokenize(text: str, t: Tables) -> tuple[list[str], set[int], int]:
    """Tokens (lowercased), indexes of SHOUTED words, and the number of '!'."""
    tokens: list[str] = []
    shouted: set[int] = set()
    exclaim = 0
    for m in TOKEN_RE.finditer(text):
        kind = m.lastgroup
        s = m.group()
        if kind == "han":
            tokens.extend(segment_zh(s, t))
        elif kind == "word":
            low = s.lower().replace("\u2019", "'")
            if tokens and f"{tokens[-1]} {low}" in t.bigrams:
                tokens[-1] = f"{tokens[-1]} {low}"
                continue
            if len(s) > 1 and s.isupper():
                shouted.add(len(tokens))
            tokens.append(low)
        elif kind == "stop":
            exclaim += s.count("!") + s.count("\uff01")
            tokens.append(SENTENCE if SENTENCE_END_RE.search(s) else CLAUSE)
        elif kind in ("emoticon", "other"):
            tokens.append(s)
    # Shouting counts only when it stands out from the rest of the text.
    words = sum(1 for tok in tokens if tok.isascii() and tok.isalpha())
    if len(shouted) == words:
        shouted = set()
    return tokens, shouted, exclaim


def valence(text: str) -> tuple[float, int]:
    """Raw valence of a text and the number of sentiment words that produced it."""
    t = tables()
    tokens, shouted, exclaim = tokenize(text, t)
    total = 0.0
    hits = 0
    start = 0
    for end in [i for i, tok in enumerate(tokens) if tok == SENTENCE] + [len(tokens)]:
        v, h = _sentence(tokens, start, end, shouted, t)
        total += v
        hits += h
        start = end + 1
    if total and exclaim:
        emphasis = min(exclaim, 4) * EXCLAIM_BOOST
        total += emphasis if total > 0 else -emphasis
    return total, hits


def _sentence(
    tokens: list[str], start: int, end: int, shouted: set[int], t: Tables
) -> tuple[float, int]:
    words, boosters = t.words, t.boosters
    contrast_at = next((i for i in range(start, end) if tokens[i] in lexicon.CONTRAST), -1)
    rhetorical = any(tokens[i] in lexicon.QUESTION_PARTICLES for i in range(start, end))
    total = 0.0
    hits = 0
    for i in range(start, end):
        tok = tokens[i]
        v = words.get(tok)
        if not v:
            continue
        nxt = tokens[i + 1] if i + 1 < end else ""
        if tok in boosters:
            if tok not in lexicon.AMBIGUOUS_BOOSTERS or words.get(nxt):
                continue  # a degree word for the next one, not a sentiment of its own
        if tok == "no" and words.get(nxt):
            continue  # "no problem": 'no' negates, it is not itself negative
        if i in shouted:
            v += CAPS_BOOST if v > 0 else -CAPS_BOOST
        v = _modify(v, tokens, start, i, rhetorical, t)
        if contrast_at >= 0:
            v *= 0.5 if i < contrast_at else 1.5
        total += v
        hits += 1
    return total, hits


def _modify(v: float, tokens: list[str], start: int, i: int, rhetorical: bool, t: Tables) -> float:
    """Apply the boosters and negators among the few tokens before tokens[i]."""
    words, negators, boosters = t.words, t.negators, t.boosters
    distance = 0.0
    for j in range(i - 1, start - 1, -1):
        prev = tokens[j]
        if prev == CLAUSE:
            break
        known = prev in words or prev in negators or prev in boosters
        distance += 1.0 if known or prev.isascii() else 0.5 * len(prev)
        if distance > WINDOW:
            break
        b = boosters.get(prev)
        if b is not None and (prev not in words or prev in lexicon.AMBIGUOUS_BOOSTERS):
            b *= DECAY[min(3, int(distance + 0.5))]
            v += b if v > 0 else -b
        neg = negators.get(prev)
        if neg is not None and not (rhetorical and prev in lexicon.RHETORICAL_NEGATORS):
            v *= neg[0] if v > 0 else neg[1]
    return v
