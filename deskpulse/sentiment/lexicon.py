"""Sentiment words and the modifiers around them (negation, degree, contrast), zh and en.

Valences use VADER's scale (-4 .. +4). The word lists live in the lexicon_*.txt files next
to this module; the modifiers are short and belong to the rules, so they live here.
"""

from functools import cache
from importlib import resources

# VADER's empirical constants: a negator turns "good" (1.9) into about -1.4, a booster
# adds about 0.3 to the magnitude of the word it precedes.
NEGATION = -0.74
BOOST = 0.293

# Negators map to (scalar for a positive word, scalar for a negative word).
# "一点也不满意" is worse than "不满意"; "not bad" stays only mildly good (VADER's finding);
# "不太好" / "not too good" is negative, but less so than "不好".
REGULAR = (NEGATION, NEGATION)
STRONG = (-1.25, NEGATION)
WEAK = (-0.7, -0.5)


def _table(value, *groups: str) -> dict:
    return {w: value for group in groups for w in group.split()}


NEGATORS_EN = _table(
    REGULAR,
    "not no never none nothing nobody nowhere neither nor without cannot rarely seldom",
    "aint isnt arent wasnt werent dont doesnt didnt cant couldnt wont wouldnt shouldnt",
    "hasnt havent hadnt mustnt neednt ain't isn't aren't wasn't weren't don't doesn't",
    "didn't can't couldn't won't wouldn't shouldn't hasn't haven't hadn't mustn't needn't",
)

NEGATORS_ZH = {
    **_table(
        REGULAR,
        "不 没 没有 无 未 别 勿 莫 并不 并没有 并非 不是 从不 从没 从未 从来不 从来没有",
        "不会 不够 没什么 没人 没有人 没有想象中 没想象中 没有想象的 没想象的",
    ),
    **_table(
        STRONG,
        "绝不 决不 毫不 毫无 根本不 根本没 根本没有 根本就不 一点也不 一点都不 一点儿也不",
        "完全不 完全没有 压根不 压根没 压根没有 丝毫不 丝毫没有",
    ),
    **_table(WEAK, "不太 不怎么 不是很 不是太 不大 不那么 不算 不算太 不是特别 不是非常"),
}

# Boosters add to the magnitude of the next sentiment word (negative values damp it).
BOOSTERS_EN = {
    **_table(
        BOOST,
        "absolutely amazingly awfully completely considerably deeply entirely especially",
        "exceptionally extremely fully greatly highly hugely incredibly intensely particularly",
        "purely quite really remarkably so substantially thoroughly totally tremendously truly",
        "unbelievably unusually utterly very too most more pretty fucking freaking",
    ),
    **_table(
        -BOOST,
        "almost barely hardly kinda kindof less little marginally occasionally partly",
        "scarcely slightly somewhat sorta bit",
    ),
    **{w: -BOOST for w in ("kind of", "sort of", "a bit", "a little")},
}

BOOSTERS_ZH = {
    **_table(
        2.5 * BOOST,
        "极 极其 极度 超级 超 最 非常 特别 十分 太 相当 无比 格外 巨 贼 简直 实在 真是",
    ),
    **_table(BOOST, "很 挺 蛮 真 真的 好 那么 这么 如此 更 更加 越来越 严重 确实"),
    **_table(-2 * BOOST, "有点 有点儿 有些 稍微 稍 略 略微 有一点 有一点点 一点 一点点 稍稍"),
    **_table(-BOOST, "比较 较 还算"),
}

# 好 is a sentiment word ("好") and a degree word ("好慢" = very slow).
AMBIGUOUS_BOOSTERS = frozenset({"好"})

# Within a sentence, the part after a contrast word outweighs the part before it
# (VADER's "but" rule).
CONTRAST = frozenset("but however although though 但 但是 可是 不过 然而 只是 就是".split())

# "这不是坑人吗": 不是 in a 吗-question is rhetorical and does not negate.
RHETORICAL_NEGATORS = frozenset({"不是", "难道"})
QUESTION_PARTICLES = frozenset({"吗", "嘛"})


def _rows(name: str) -> list[list[str]]:
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    return [line.split("\t") for line in text.splitlines() if line[:1] not in ("", "#")]


def _read(name: str) -> dict[str, float]:
    return {row[0]: float(row[1]) for row in _rows(name)}


@cache
def english() -> dict[str, float]:
    """VADER's lexicon with the support-domain additions and overrides on top."""
    return {**_read("lexicon_en_vader.txt"), **_read("lexicon_en_extra.txt")}


@cache
def chinese() -> dict[str, float]:
    return _read("lexicon_zh.txt")


@cache
def topics() -> frozenset[str]:
    """Lexicon words tagged 'topic': they name what a complaint is about (故障, outage),
    so they may be themes; other sentiment words (差, terrible) may not."""
    names = ("lexicon_en_extra.txt", "lexicon_zh.txt")
    return frozenset(row[0] for name in names for row in _rows(name) if row[2:3] == ["topic"])
