"""Themes of negative feedback: term extraction, and exact, mergeable, bounded counting."""

import json
import random

import pandas as pd
import pytest

from deskpulse.sentiment.themes import Theme, ThemeCounter, extract_terms, sample_level

# --- extract_terms -------------------------------------------------------------------------


def test_chinese_words_and_pairs_without_sentiment_or_stopwords():
    terms = extract_terms("客服态度太差了，退款一直没有到账。")
    assert terms[:4] == ["客服", "客服态度", "态度", "退款"]
    assert "到账" in terms
    for word in ("差", "太差", "了", "没有", "一直"):
        assert word not in terms


def test_problem_words_are_themes_opinion_words_are_not():
    terms = extract_terms("手机发热严重，经常死机，非常失望")
    assert {"手机", "发热", "死机", "手机发热"} <= set(terms)
    assert "失望" not in terms and "非常" not in terms


def test_english_lowercase_words_minus_stopwords_with_bigrams():
    terms = extract_terms("The Password reset link expired, and customer service is SLOW!")
    assert terms == [
        "password",
        "password reset",
        "reset",
        "reset link",
        "link",
        "link expired",
        "expired",
        "customer",
        "customer service",
        "service",
        "slow",
    ]


def test_handles_links_and_punctuation_break_phrases():
    terms = extract_terms("@AmazonHelp order #123 lost https://t.co/x. Battery, life")
    assert terms == ["order", "lost", "battery", "life"]


def test_mixed_text_keeps_both_scripts_apart():
    terms = extract_terms("Agent 态度很好 but the refund 还没到账")
    assert terms == ["agent", "态度", "refund", "还没到账"]


def test_terms_are_distinct_and_in_order():
    assert extract_terms("refund refund refund, refund") == ["refund"]
    assert extract_terms("物流 物流 包装") == ["物流", "物流包装", "包装"]


@pytest.mark.parametrize("lang", ["other", "unknown"])
def test_no_terms_for_uncovered_languages(lang):
    assert extract_terms("whatever text", lang) == []


def test_extract_terms_never_raises():
    rng = random.Random(3)
    alphabet = "ab 客服退款很差 ,.!@#\ud800\x00😡Ж'-"
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        assert all(isinstance(t, str) and t for t in extract_terms(text))
    assert extract_terms("") == []


# --- ThemeCounter ---------------------------------------------------------------------------


def _counter(comments, max_terms=20_000):
    c = ThemeCounter(max_terms)
    for terms, negative in comments:
        c.add(terms, negative)
    return c


def test_lift_and_counts_by_hand():
    # 10 comments, 5 negative. "refund": 3 negative of 4; "login": 1 negative of 5.
    comments = (
        [(["refund"], True)] * 3
        + [(["refund", "login"], False)]
        + [(["login"], True)]
        + [(["login"], False)] * 3
        + [(["other"], False), (["other"], True)]
    )
    c = _counter(comments)
    assert (c.comments, c.negative) == (10, 5)
    top = c.top(n=10, min_count=1, smoothing=1.0)
    # lift = (count + s) / (total * negative / comments + s)
    assert top == [
        Theme("refund", (3 + 1) / (4 * 5 / 10 + 1), 3, 4),
        Theme("other", (1 + 1) / (2 * 5 / 10 + 1), 1, 2),
        Theme("login", (1 + 1) / (5 * 5 / 10 + 1), 1, 5),
    ]
    assert [round(t.lift, 4) for t in top] == [1.3333, 1.0, 0.5714]


def test_min_count_guard_and_smoothing():
    comments = [(["rare"], True)] + [(["common"], True)] * 5 + [(["x"], False)] * 10
    c = _counter(comments)
    assert [t.term for t in c.top(min_count=2)] == ["common"]
    # Unsmoothed, the one-off term ties with the common one; smoothing ranks it lower.
    assert c.top(min_count=1, smoothing=0.0)[0].lift == c.top(min_count=1, smoothing=0.0)[1].lift
    assert [t.term for t in c.top(min_count=1)] == ["common", "rare"]


def test_ties_are_broken_by_count_then_term():
    comments = [(["b", "a", "c"], True), (["x"], False)] * 3
    assert [t.term for t in _counter(comments).top(min_count=1)] == ["a", "b", "c"]


def test_repeats_in_one_comment_count_once():
    c = _counter([(["refund", "refund"], True), (["y"], False)])
    assert (c.totals["refund"], c.negatives["refund"]) == (1, 1)


def test_no_negative_comments_no_themes():
    assert _counter([(["a"], False)]).top(min_count=1) == []
    assert ThemeCounter().top() == []


def _corpus(n=3000, vocab=400, seed=1):
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(vocab)]
    out = []
    for _ in range(n):
        negative = rng.random() < 0.3
        k = rng.randint(1, 6)
        # Negative comments lean to the first 20 words, so some themes stand out.
        pool = words[:20] if negative and rng.random() < 0.5 else words
        out.append(([rng.choice(pool) for _ in range(k)], negative))
    return out


@pytest.mark.parametrize("max_terms", [20_000, 60])
def test_merge_of_partitions_equals_one_counter(max_terms):
    corpus = _corpus()
    whole = _counter(corpus, max_terms)
    rng = random.Random(5)
    parts = [ThemeCounter(max_terms) for _ in range(4)]
    for terms, negative in rng.sample(corpus, len(corpus)):  # any order, any partition
        rng.choice(parts).add(terms, negative)
    merged = ThemeCounter(max_terms)
    for part in reversed(parts):
        merged.merge(part)
    assert merged == whole
    assert merged.top(20, min_count=3) == whole.top(20, min_count=3)


def test_memory_is_bounded():
    c = _counter(_corpus(vocab=5000), max_terms=100)
    assert len(c.totals) <= 100 and c.level > 0
    assert all(sample_level(t) >= c.level for t in c.totals)


def test_merge_rejects_different_bounds():
    with pytest.raises(ValueError, match="max_terms differ"):
        ThemeCounter(10).merge(ThemeCounter(20))


def test_state_round_trips_through_json():
    c = _counter(_corpus(), max_terms=60)
    state = json.loads(json.dumps(c.to_dict()))
    assert ThemeCounter.from_dict(state) == c
    assert ThemeCounter.from_dict(state).top(5, 3) == c.top(5, 3)


def _pandas_oracle(comments, n, min_count, smoothing, max_terms):
    """What a batch job computes: document counts, the sampling rule, lift, sort."""
    rows = pd.DataFrame(
        [(i, t, neg) for i, (terms, neg) in enumerate(comments) for t in set(terms)],
        columns=["comment", "term", "negative"],
    )
    n_comments = len(comments)
    n_negative = sum(neg for _, neg in comments)
    per_term = rows.groupby("term").agg(total=("comment", "size"), count=("negative", "sum"))
    levels = per_term.index.map(sample_level).to_series(index=per_term.index)
    level = 0
    while (levels >= level).sum() > max_terms:
        level += 1
    per_term = per_term[levels >= level]
    per_term = per_term[per_term["count"] >= min_count].copy()
    expected = per_term["total"] * n_negative / n_comments + smoothing
    per_term["lift"] = (per_term["count"] + smoothing) / expected
    per_term = per_term.reset_index().sort_values(
        ["lift", "count", "term"], ascending=[False, False, True]
    )
    return [
        Theme(r.term, r.lift, int(r.count), int(r.total))
        for r in per_term.head(n).itertuples(index=False)
    ]


@pytest.mark.parametrize("max_terms", [20_000, 80])
def test_top_matches_a_pandas_oracle_exactly(max_terms):
    corpus = _corpus(seed=9)
    c = _counter(corpus, max_terms)
    for n, min_count, smoothing in ((10, 3, 1.0), (25, 1, 0.5), (5, 10, 2.0)):
        assert c.top(n, min_count, smoothing) == _pandas_oracle(
            corpus, n, min_count, smoothing, max_terms
        )


def test_real_comments_surface_the_complaint():
    comments = (
        [("退款申请一周了还没到账，太慢了", True)] * 4
        + [("物流很快，包装完好，非常满意", False)] * 6
        + [("包装完好，客服态度很好", False)] * 4
        + [("客服回复慢，退款还没到账", True)] * 2
    )
    c = ThemeCounter()
    for text, negative in comments:
        c.add(extract_terms(text), negative)
    top = c.top(2, min_count=3)
    assert [(t.term, t.count, t.total) for t in top] == [("还没到账", 6, 6), ("退款", 6, 6)]
    assert c.lift("包装") < 1 < top[1].lift
