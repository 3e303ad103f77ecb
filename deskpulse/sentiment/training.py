"""Building the data files: the Chinese n-gram model and the theme word list.

Used by scripts/train_sentiment.py and scripts/eval_sentiment.py; not on the scoring path.
Everything here is deterministic: a fixed split by hash of the review text, features and
vocabulary in sorted order (ties broken by the n-gram), full-batch Adam from zero weights
for a fixed number of steps, weights rounded to 3 decimals.
"""

import csv
import hashlib
import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deskpulse.sentiment.model import HAN_RUN_RE, ngrams
from deskpulse.sentiment.zh_words import MAX_WORD

ZH_REVIEWS = Path("zh_review_sentiment") / "online_shopping_9_cats.csv"
MIN_COUNT = 3  # an n-gram seen in fewer training reviews is noise
KEEP = 20_000  # n-grams kept in the exported model (about 350 kB of JSON)
L2 = 1e-4
STEPS = 100
LEARNING_RATE = 0.05


@dataclass(frozen=True)
class Review:
    category: str
    positive: bool
    text: str


def split_of(text: str) -> str:
    """'heldout' (20 %, never tuned on), 'dev' (10 %, for tuning) or 'train'."""
    bucket = int.from_bytes(hashlib.md5(text.encode("utf-8")).digest()[:8], "big") % 10
    return "heldout" if bucket < 2 else "dev" if bucket == 2 else "train"


def load_reviews(datasets: Path) -> list[Review]:
    with open(datasets / ZH_REVIEWS, encoding="utf-8", newline="") as f:
        return [Review(r["cat"], r["label"] == "1", r["review"]) for r in csv.DictReader(f)]


class SparseRows:
    """Binary feature rows in CSR form, enough for X @ w and X.T @ r with numpy."""

    def __init__(self, rows: list[list[int]], width: int) -> None:
        self.width = width
        self.indptr = np.cumsum([0] + [len(r) for r in rows], dtype=np.int64)
        self.indices = np.fromiter((i for r in rows for i in r), dtype=np.int64)
        self.row_of = np.repeat(np.arange(len(rows)), np.diff(self.indptr))

    def dot(self, w: np.ndarray) -> np.ndarray:
        return np.bincount(self.row_of, weights=w[self.indices], minlength=len(self.indptr) - 1)

    def tdot(self, r: np.ndarray) -> np.ndarray:
        return np.bincount(self.indices, weights=r[self.row_of], minlength=self.width)


def fit_logistic(x: SparseRows, y: np.ndarray) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by full-batch Adam (deterministic)."""
    w = np.zeros(x.width)
    m, v = np.zeros(x.width), np.zeros(x.width)
    b = mb = vb = 0.0
    n = len(y)
    for step in range(1, STEPS + 1):
        p = 1.0 / (1.0 + np.exp(-(x.dot(w) + b)))
        r = (p - y) / n
        g = x.tdot(r) + L2 * w
        gb = float(r.sum())
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        mb = 0.9 * mb + 0.1 * gb
        vb = 0.999 * vb + 0.001 * gb * gb
        c1, c2 = 1 - 0.9**step, 1 - 0.999**step
        w -= LEARNING_RATE * (m / c1) / (np.sqrt(v / c2) + 1e-8)
        b -= LEARNING_RATE * (mb / c1) / ((vb / c2) ** 0.5 + 1e-8)
    return w, b


def _rows(grams: list[set[str]], index: dict[str, int]) -> list[list[int]]:
    return [sorted(index[g] for g in gs if g in index) for gs in grams]


def select(grams: list[set[str]], y: np.ndarray) -> list[str]:
    """The KEEP n-grams with the largest smoothed log-odds times log frequency."""
    counts = Counter(g for gs in grams for g in gs)
    positive = Counter(g for gs, label in zip(grams, y, strict=True) if label for g in gs)
    n_pos = float(y.sum())
    n_neg = len(y) - n_pos

    def strength(g: str) -> float:
        p, n = positive[g], counts[g] - positive[g]
        return abs(math.log((p + 1) / (n_pos + 1)) - math.log((n + 1) / (n_neg + 1))) * math.log(
            counts[g]
        )

    frequent = [g for g, c in counts.items() if c >= MIN_COUNT]
    return sorted(sorted(frequent, key=lambda g: (-strength(g), g))[:KEEP])


def train(reviews: list[Review]) -> dict:
    grams = [ngrams(r.text) for r in reviews]
    y = np.array([r.positive for r in reviews], dtype=float)
    vocab = select(grams, y)
    index = {g: i for i, g in enumerate(vocab)}
    w, b = fit_logistic(SparseRows(_rows(grams, index), len(vocab)), y)
    return {
        "about": "Han character 1-3-gram logistic regression, binary features; "
        "made by scripts/train_sentiment.py from the zh_review_sentiment set",
        "trained_on": len(reviews),
        "bias": round(b, 3),
        "weights": {
            g: round(float(wi), 3) for g, wi in zip(vocab, w, strict=True) if round(float(wi), 3)
        },
    }


def dumps(model: dict) -> str:
    # One entry a line keeps the committed file diffable.
    return json.dumps(model, ensure_ascii=False, sort_keys=True, indent=0) + "\n"


JIEBA_LICENSE = """\
The MIT License (MIT)

Copyright (c) 2013 Sun Junyi

Permission is hereby granted, free of charge, to any person obtaining a copy of
this software and associated documentation files (the "Software"), to deal in
the Software without restriction, including without limitation the rights to
use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of
the Software, and to permit persons to whom the Software is furnished to do so,
subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS
FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR
COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER
IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN
CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE."""

COMMON_WORD = 100  # jieba frequency from which a word is kept whatever the reviews say
REVIEW_WORD = 3  # reviews a rarer word must occur in to be kept


def build_zh_words(reviews: list[Review], jieba_dict: str, jieba_version: str) -> str:
    """The theme segmentation dictionary: common jieba words plus those the reviews use."""
    seen: Counter[str] = Counter()
    for r in reviews:
        grams: set[str] = set()
        for run in HAN_RUN_RE.findall(r.text):
            for size in range(2, MAX_WORD + 1):
                grams.update(run[i : i + size] for i in range(len(run) - size + 1))
        seen.update(grams)
    kept = {}
    for line in jieba_dict.splitlines():
        word, freq, _tag = line.split(" ")
        if len(word) > MAX_WORD or not HAN_RUN_RE.fullmatch(word):
            continue
        if int(freq) >= COMMON_WORD or seen[word] >= REVIEW_WORD:
            kept[word] = int(freq)
    header = [
        f"Word<TAB>frequency: a subset of dict.txt of jieba {jieba_version} (PyPI), made by",
        "scripts/train_sentiment.py: Han words of up to 6 characters with a frequency of at",
        f"least {COMMON_WORD}, or seen in at least {REVIEW_WORD} reviews of the zh review set.",
        "Licence of the source:",
        "",
        *JIEBA_LICENSE.splitlines(),
    ]
    lines = [f"# {h}".rstrip() for h in header] + [f"{w}\t{f}" for w, f in sorted(kept.items())]
    return "\n".join(lines) + "\n"
