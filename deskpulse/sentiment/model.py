"""Character n-gram logistic regression for Chinese, trained by scripts/train_sentiment.py.

The weights live in zh_ngram_model.json next to this module. Scoring is a sum of
dict lookups, so it needs no numpy and costs about a microsecond per character.
"""

import json
import re
from functools import cache
from importlib import resources

MODEL_FILE = "zh_ngram_model.json"
HAN_RUN_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


def ngrams(text: str) -> set[str]:
    """Distinct 1..3-grams of the Han runs of a text (the model's binary features)."""
    out: set[str] = set()
    for run in HAN_RUN_RE.findall(text):
        out.update(run)
        out.update([run[i : i + 2] for i in range(len(run) - 1)])
        out.update([run[i : i + 3] for i in range(len(run) - 2)])
    return out


class NgramModel:
    def __init__(self, weights: dict[str, float], bias: float) -> None:
        self.weights = weights
        self.bias = bias

    def logit(self, text: str) -> float | None:
        """Log-odds of positive, or None when the text has no Han characters."""
        grams = ngrams(text)
        if not grams:
            return None
        weights = self.weights
        # The set intersection runs in C; most n-grams of a text are not in the model.
        return self.bias + sum([weights[g] for g in weights.keys() & grams])

    @classmethod
    def from_json(cls, doc: dict) -> "NgramModel":
        return cls(doc["weights"], doc["bias"])


@cache
def load() -> NgramModel:
    text = resources.files(__package__).joinpath(MODEL_FILE).read_text(encoding="utf-8")
    return NgramModel.from_json(json.loads(text))
