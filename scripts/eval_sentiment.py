"""Compare sentiment methods: held-out zh reviews, out-of-domain test set, speed.

    .venv/bin/python scripts/eval_sentiment.py [--datasets DIR]

Methods: the lexicon and rules alone, naive Bayes and logistic regression on character
n-grams, the shipped hybrid (score_comment), and SnowNLP / vaderSentiment when importable
(they are not project dependencies; install them in a scratch venv to include them).
Prints markdown tables (docs/sentiment.md quotes them).

Held-out: the 20 % of the zh review set that split_of() never gives to training or tuning.
Binary accuracy takes the sign of the score; a score of exactly 0 counts as wrong.
Out of domain: tests/fixtures/sentiment_ood.jsonl, three classes, neutral = |score| < 0.2.
"""

import argparse
import json
import math
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from deskpulse.sentiment import model, rules, scorer, training  # noqa: E402
from deskpulse.settings import DATASETS_DIR  # noqa: E402

DEFAULT_DATASETS = DATASETS_DIR
OOD_TEST = REPO / "tests" / "fixtures" / "sentiment_ood.jsonl"
OOD_DEV = REPO / "tests" / "fixtures" / "sentiment_dev.jsonl"
TWCS = Path("twcs_sample") / "twcs_first5000.csv"

Method = Callable[[str], float]  # text -> score in [-1, 1]


def squash(x: float) -> float:
    return x / math.sqrt(x * x + scorer.ALPHA)


def from_logit(z: float) -> float:
    return 2.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z)))) - 1.0  # 2p - 1


def naive_bayes(reviews: list[training.Review]) -> Method:
    """Multinomial NB on binary Han 1-3-grams (min count as the shipped model)."""
    pos, neg = Counter(), Counter()
    for r in reviews:
        (pos if r.positive else neg).update(model.ngrams(r.text))
    vocab = {g for g in pos.keys() | neg.keys() if pos[g] + neg[g] >= training.MIN_COUNT}
    p_total = sum(pos[g] for g in vocab) + len(vocab)
    n_total = sum(neg[g] for g in vocab) + len(vocab)
    weight = {g: math.log((pos[g] + 1) / p_total) - math.log((neg[g] + 1) / n_total) for g in vocab}
    n_pos = sum(r.positive for r in reviews)
    prior = math.log(n_pos / (len(reviews) - n_pos))

    def score(text: str) -> float:
        grams = model.ngrams(text)
        if not grams:
            return 0.0
        return from_logit(prior + sum(weight.get(g, 0.0) for g in grams))

    return score


def methods(train: list[training.Review]) -> dict[str, Method]:
    ngram = model.load()

    def lr(text: str) -> float:
        z = ngram.logit(text)
        return 0.0 if z is None else from_logit(z)

    found: dict[str, Method] = {
        "lexicon + rules": lambda t: squash(rules.valence(t)[0]),
        "naive Bayes n-grams": naive_bayes(train),
        "logistic n-grams": lr,
        "hybrid (shipped)": lambda t: scorer.score_comment(t).score,
    }
    try:
        from snownlp import SnowNLP

        found["SnowNLP"] = lambda t: 2 * SnowNLP(t).sentiments - 1 if t.strip() else 0.0
    except ImportError:
        pass
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        vader = SentimentIntensityAnalyzer()
        found["vaderSentiment"] = lambda t: vader.polarity_scores(t)["compound"]
    except ImportError:
        pass
    return found


def binary(scores: list[float], labels: list[bool]) -> tuple[float, float]:
    """Accuracy and macro-F1 of sign(score); 0 is neither class."""
    pred = ["pos" if s > 0 else "neg" if s < 0 else "none" for s in scores]
    gold = ["pos" if y else "neg" for y in labels]
    acc = sum(p == g for p, g in zip(pred, gold, strict=True)) / len(gold)
    f1s = []
    for c in ("pos", "neg"):
        tp = sum(p == g == c for p, g in zip(pred, gold, strict=True))
        predicted, actual = pred.count(c), gold.count(c)
        prec = tp / predicted if predicted else 0.0
        rec = tp / actual if actual else 0.0
        f1s.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    return acc, sum(f1s) / 2


def timed(fn: Method, texts: list[str]) -> tuple[list[float], float]:
    started = time.perf_counter()
    out = [fn(t) for t in texts]
    return out, len(texts) / (time.perf_counter() - started)


def heldout_table(found: dict[str, Method], heldout: list[training.Review]) -> dict[str, float]:
    by_cat: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(heldout):
        by_cat[r.category].append(i)
    cats = sorted(by_cat, key=lambda c: -len(by_cat[c]))
    print(f"\n### Held-out zh reviews ({len(heldout)}): accuracy / macro-F1\n")
    print("| method | " + " | ".join(f"{c} ({len(by_cat[c])})" for c in cats) + " | all |")
    print("|---" * (len(cats) + 2) + "|")
    speeds = {}
    texts = [r.text for r in heldout]
    labels = [r.positive for r in heldout]
    for name, fn in found.items():
        if name == "vaderSentiment":
            continue
        scores, speeds[name] = timed(fn, texts)
        cells = []
        for c in [*cats, None]:
            idx = by_cat[c] if c else range(len(heldout))
            acc, f1 = binary([scores[i] for i in idx], [labels[i] for i in idx])
            cells.append(f"{acc:.3f} / {f1:.3f}")
        neutral = sum(abs(s) < scorer.NEUTRAL_BELOW for s in scores) / len(scores)
        print(f"| {name} | " + " | ".join(cells) + f" |  (neutral {neutral:.1%})")
    return speeds


def ood_table(found: dict[str, Method], path: Path, title: str) -> None:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    groups = {
        "all": rows,
        **{g: [r for r in rows if r["lang"] == g] for g in ("zh", "en", "mixed")},
    }
    print(f"\n### {title} ({len(rows)}): 3-class accuracy (neutral = |score| < 0.2)\n")
    print("| method | " + " | ".join(f"{g} ({len(rs)})" for g, rs in groups.items()) + " |")
    print("|---" * (len(groups) + 1) + "|")
    for name, fn in found.items():
        cells = []
        for rs in groups.values():
            hits = sum(scorer.label_of(fn(r["text"])) == r["label"] for r in rs)
            cells.append(f"{hits / len(rs):.3f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    langs = sum(scorer.score_comment(r["text"]).lang == r["lang"] for r in rows)
    print(f"\nLanguage detected as labelled: {langs}/{len(rows)}")


def speed_table(found: dict[str, Method], zh_speed: dict[str, float], datasets: Path) -> None:
    import csv

    with open(datasets / TWCS, encoding="utf-8", newline="") as f:
        tweets = [r["text"] for r in csv.DictReader(f)]
    print("\n### Speed, one core (comments/s)\n")
    print("| method | zh held-out reviews (avg 49 chars) | twcs tweets (avg 107 chars) |")
    print("|---|---|---|")
    for name, fn in found.items():
        sample = tweets[:500] if name == "SnowNLP" else tweets
        _, en_speed = timed(fn, sample)
        zh = f"{zh_speed[name]:,.0f}" if name in zh_speed else "-"
        print(f"| {name} | {zh} | {en_speed:,.0f} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS)
    args = ap.parse_args()
    reviews = training.load_reviews(args.datasets)
    heldout = [r for r in reviews if training.split_of(r.text) == "heldout"]
    train = [r for r in reviews if training.split_of(r.text) != "heldout"]
    scorer.score_comment("")  # load the tables before timing
    found = methods(train)
    print(f"Methods: {', '.join(found)}")
    zh_speed = heldout_table(found, heldout)
    ood_table(found, OOD_TEST, "Out-of-domain test set")
    ood_table(found, OOD_DEV, "Tuning set (used to choose the constants; not a test)")
    speed_table(found, zh_speed, args.datasets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
