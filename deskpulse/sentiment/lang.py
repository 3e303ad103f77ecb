"""Script-based language detection for short comments: zh, en, mixed, other, unknown."""

import re

# Handles, links and e-mail addresses say nothing about the writer's language.
NOISE_RE = re.compile(r"https?://\S+|www\.\S+|[\w.+-]+@[\w-]+\.[\w.]+|[@#]\w+", re.ASCII)
HAN_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
KANA_HANGUL_RE = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uac00-\ud7af\u1100-\u11ff]")
LATIN_WORD_RE = re.compile(r"[A-Za-z]{2,}")

# A handful of the most frequent function words: enough to tell English from
# Spanish, French, German, Portuguese or Italian in a sentence, not in a word.
EN_WORDS = frozenset(
    "the and to is are was i you my me it for this that of in on with have has not"
    " your we they be at but so can just what how why when do did no".split()
)
FOREIGN_WORDS = frozenset(
    "que el en los las lo se mi por con para una del muy pero est les des et je pas pour vous"
    " une dans avec der die das und ist nicht ich sie ein eine mit auf nao uma voce"
    " che il di per non sono della".split()
)

# An English word carries about as much as two Han characters.
LATIN_WEIGHT = 2
MIXED_MIN_SHARE = 0.15


def detect_language(text: str) -> str:
    """Return 'zh', 'en', 'mixed', 'other' or 'unknown' (no letters at all)."""
    if "@" in text or "#" in text or "http" in text or "www." in text:
        text = NOISE_RE.sub(" ", text)
    han = sum(map(len, HAN_RE.findall(text)))
    kana_hangul = len(KANA_HANGUL_RE.findall(text))
    words = [w.lower() for w in LATIN_WORD_RE.findall(text)]
    if kana_hangul and kana_hangul * 4 >= han:
        return "other"  # Japanese or Korean
    latin = LATIN_WEIGHT * len(words)
    if han + latin == 0:
        return "other" if any(c.isalpha() for c in text) else "unknown"
    share = han / (han + latin)
    if share >= 1 - MIXED_MIN_SHARE:
        return "zh"
    if share > MIXED_MIN_SHARE:
        return "mixed"
    if _looks_foreign(text, words):
        return "other"
    return "en"


def _looks_foreign(text: str, words: list[str]) -> bool:
    """Latin-script text that is not English: foreign letters or function words."""
    if text.isascii():
        letters = non_latin = 0
    else:
        letters = sum(1 for c in text if c.isalpha())
        non_latin = sum(1 for c in text if c.isalpha() and not ("a" <= c.lower() <= "z"))
    if non_latin * 2 > letters > 0:
        return True  # Cyrillic, Greek, Arabic, Thai ...
    english = sum(1 for w in words if w in EN_WORDS)
    foreign = sum(1 for w in words if w in FOREIGN_WORDS)
    accented = non_latin >= 2
    return foreign > english or (accented and english == 0)
