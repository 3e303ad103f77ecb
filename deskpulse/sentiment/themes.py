"""Themes of negative feedback: terms over-represented among negative comments.

extract_terms turns a comment into theme candidates: content words and adjacent pairs of
them (English: lowercase words minus stopwords; Chinese: words from zh_words.cut), leaving
out sentiment and modifier words, which would top every list ("差", "bad") without saying
what the complaint is about.

ThemeCounter counts, per term, the comments that contain it: all of them and the negative
ones. Counts add, so counters of partitions, workers or windows merge exactly. Lift is
P(term | negative) / P(term | all), smoothed towards 1:

    lift = (count + s) / (total * negative / comments + s)

count = negative comments with the term, total = all comments with the term, s the
smoothing (pseudo-comments). top() keeps terms with count >= min_count and sorts by lift,
then count (both descending), then term: the result is exact and deterministic.

Memory is bounded by max_terms distinct terms. Past it, the counter keeps only terms whose
hash level (trailing zero bits of crc32) is at least `level`, raising the level until the
terms fit: exact counts on a deterministic sample of the vocabulary. The kept set depends
only on the set of terms seen, never on order or partitioning, so merged counters and a
batch computation over the same comments agree exactly (see sample_level).
"""

import re
import zlib
from collections.abc import Iterable
from functools import cache
from typing import NamedTuple

from deskpulse.sentiment import lexicon, zh_words

MAX_TERMS = 20_000  # about 3 MB per counter when full
MAX_TERM_CHARS = 40
TOKEN_RE = re.compile(
    r"(?P<skip>https?://\S+|www\.\S+|[A-Za-z0-9_.+-]+@[A-Za-z0-9-]+\.[A-Za-z0-9.]+|[@#]\w+)"
    r"|(?P<han>[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+)"
    r"|(?P<word>[A-Za-z][A-Za-z0-9]*(?:['\u2019-][A-Za-z0-9]+)*)"
    r"|(?P<stop>[^\sA-Za-z0-9])"  # punctuation, symbols, emoji: a phrase ends here
)

STOPWORDS_EN = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both by can could did do does doing down during each few for
    from further get got had has have having he her here hers herself him himself his how i
    if in into is it its itself just let me more most my myself now of off on once only or
    other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up us
    very was we were what when where which while who whom why will with would you your yours
    yourself yourselves im ive id ill youre youve dont doesnt didnt cant wont isnt arent wasnt
    i'm i've i'd i'll you're you've it's that's there's what's can't won't don't doesn't
    didn't isn't aren't wasn't weren't haven't hasn't couldn't wouldn't shouldn't let's
    one two three even still already yet really much many lot lots thing things something
    anything nothing everything way today yesterday tomorrow now time times day days week
    hi hello hey dear thanks thank please pls plz ok okay yes yeah sure know think want need
    going go make made say said tell told see look use used try tried via amp dm""".split()
)

STOPWORDS_ZH = frozenset(
    """的 了 是 我 你 他 她 它 我们 你们 他们 她们 咱们 这 那 这个 那个 这些 那些 这里 那里
    这样 那样 这么 那么 一个 一下 一些 一点 一直 一次 一样 有 也 都 就 还 又 再 才 在 和 与 跟
    及 给 把 被 让 对 为 于 从 向 往 说 会 能 可以 要 想 去 来 到 用 买 过 着 呢 吧 啊 呀 哦
    嗯 吗 么 嘛 啦 哈 哈哈 什么 怎么 怎么样 为什么 因为 所以 如果 虽然 但是 而且 然后 或者
    已经 现在 今天 昨天 明天 时候 时间 东西 感觉 觉得 知道 可能 应该 需要 还是 以后 之前 之后
    自己 大家 我家 您 请 请问 谢谢 您好 你好 一下子 不过 其实 真的 还有 没有 个 些 次 天
    个月 年 月 日 点 件 台 只 条 块 元 分 里 上 下 中 后 前 多 少 很多 非常 比较 特别 出来
    起来 下来 回来 进去 一起 结果 问题 情况 方面 地方 事情 发现 看到 收到 拿到 这次 上次
    下次 第一次 两天 三天 几天 每天 经常 总是 老是 根本 真正 一定 肯定 当然 确实 简直 居然 竟然
    完全 主要 唯一 本来 终于 马上 立刻""".split()
)


class Theme(NamedTuple):
    term: str
    lift: float
    count: int  # negative comments containing the term
    total: int  # comments containing the term


@cache
def excluded() -> frozenset[str]:
    """Stopwords, modifiers and lexicon words, except those tagged as topics."""
    lexicon_words = {*lexicon.english(), *lexicon.chinese()} - lexicon.topics()
    modifiers = {*lexicon.NEGATORS_EN, *lexicon.NEGATORS_ZH, *lexicon.BOOSTERS_EN}
    modifiers |= {*lexicon.BOOSTERS_ZH, *lexicon.CONTRAST}
    return frozenset(lexicon_words | modifiers | STOPWORDS_EN | STOPWORDS_ZH)


def extract_terms(text: str, lang: str | None = None) -> list[str]:
    """Distinct theme candidates of a comment, in order of first appearance.

    lang is the language from score_comment, if known: 'other' and 'unknown' comments
    give no terms (their stopwords and words are not covered).
    """
    if lang in ("other", "unknown") or not isinstance(text, str):
        return []
    cut = zh_words.dictionary().cut
    skip = excluded()
    terms: dict[str, None] = {}  # an ordered set
    prev: tuple[str, bool] | None = None  # the previous content word and its script
    for m in TOKEN_RE.finditer(text):
        kind = m.lastgroup
        if kind == "han":
            pieces = [(w, True) for w in cut(m.group())]
        elif kind == "word":
            pieces = [(m.group().lower().replace("\u2019", "'"), False)]
        else:
            prev = None  # links, handles and punctuation break phrases
            continue
        for word, han in pieces:
            if len(word) < 2 or len(word) > MAX_TERM_CHARS or word in skip:
                prev = None
                continue
            if prev is not None and prev[1] == han and prev[0] != word:
                terms.setdefault(prev[0] + ("" if han else " ") + word)
            terms.setdefault(word)
            prev = (word, han)
    return list(terms)


def sample_level(term: str) -> int:
    """Hash level of a term: trailing zero bits of crc32 (P(level >= k) = 2**-k)."""
    h = zlib.crc32(term.encode("utf-8", "surrogatepass"))
    return (h & -h).bit_length() - 1 if h else 32


class ThemeCounter:
    """Mergeable counts of terms in all comments and in negative ones."""

    def __init__(self, max_terms: int = MAX_TERMS) -> None:
        self.max_terms = max_terms
        self.comments = 0
        self.negative = 0
        self.level = 0
        self.totals: dict[str, int] = {}  # term -> comments containing it
        self.negatives: dict[str, int] = {}  # term -> negative comments containing it

    def add(self, terms: Iterable[str], negative: bool) -> None:
        """Count one comment given its terms (repeats within a comment count once)."""
        self.comments += 1
        self.negative += negative
        level = self.level
        for term in set(terms):
            if level and sample_level(term) < level:
                continue
            self.totals[term] = self.totals.get(term, 0) + 1
            if negative:
                self.negatives[term] = self.negatives.get(term, 0) + 1
        if len(self.totals) > self.max_terms:
            self._shrink()

    def merge(self, other: "ThemeCounter") -> "ThemeCounter":
        """Add other's counts into this counter (in place); returns self."""
        if other.max_terms != self.max_terms:
            raise ValueError(f"max_terms differ: {self.max_terms} and {other.max_terms}")
        self.comments += other.comments
        self.negative += other.negative
        for mine, theirs in ((self.totals, other.totals), (self.negatives, other.negatives)):
            for term, n in theirs.items():
                mine[term] = mine.get(term, 0) + n
        if other.level > self.level or len(self.totals) > self.max_terms:
            self.level = max(self.level, other.level)
            self._shrink()
        return self

    def _shrink(self) -> None:
        """Raise the level until the terms fit; a dropped term is never counted again."""
        if self.level:
            self._drop_below(self.level)  # terms merged in from a lower-level counter
        while len(self.totals) > self.max_terms:
            self.level += 1
            self._drop_below(self.level)

    def _drop_below(self, level: int) -> None:
        for term in [t for t in self.totals if sample_level(t) < level]:
            del self.totals[term]
            self.negatives.pop(term, None)

    def lift(self, term: str, smoothing: float = 1.0) -> float:
        count = self.negatives.get(term, 0)
        total = self.totals.get(term, 0)
        return (count + smoothing) / (total * self.negative / self.comments + smoothing)

    def top(self, n: int = 10, min_count: int = 3, smoothing: float = 1.0) -> list[Theme]:
        """The n themes with the highest lift among terms in >= min_count negative comments."""
        if not self.negative:
            return []
        themes = [
            Theme(term, self.lift(term, smoothing), count, self.totals[term])
            for term, count in self.negatives.items()
            if count >= min_count
        ]
        themes.sort(key=lambda t: (-t.lift, -t.count, t.term))
        return themes[:n]

    def to_dict(self) -> dict:
        """JSON-ready state, for a table, Redis or a snapshot."""
        return {
            "max_terms": self.max_terms,
            "comments": self.comments,
            "negative": self.negative,
            "level": self.level,
            "terms": {t: [n, self.negatives.get(t, 0)] for t, n in sorted(self.totals.items())},
        }

    @classmethod
    def from_dict(cls, state: dict) -> "ThemeCounter":
        counter = cls(state["max_terms"])
        counter.comments = state["comments"]
        counter.negative = state["negative"]
        counter.level = state["level"]
        for term, (total, negative) in state["terms"].items():
            counter.totals[term] = total
            if negative:
                counter.negatives[term] = negative
        return counter

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ThemeCounter) and self.to_dict() == other.to_dict()
