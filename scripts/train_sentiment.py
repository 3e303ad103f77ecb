"""Build the sentiment data files from the datasets: the zh n-gram model and the word list.

    .venv/bin/python scripts/train_sentiment.py [--datasets DIR] [--check]

Writes deskpulse/sentiment/zh_ngram_model.json (trained on every review outside the
held-out 20 %, see deskpulse.sentiment.training.split_of) and
deskpulse/sentiment/zh_words.txt (needs jieba, the `train` extra: pip install -e '.[train]').
Both are deterministic: --check rebuilds them in memory and exits 1 when one differs from
the committed file.
"""

import argparse
import importlib.metadata
import sys
import time
from importlib import resources
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from deskpulse.sentiment import model, training, zh_words  # noqa: E402
from deskpulse.settings import DATASETS_DIR  # noqa: E402

DEFAULT_DATASETS = DATASETS_DIR
PACKAGE = REPO / "deskpulse" / "sentiment"


def build_model(reviews: list[training.Review]) -> str:
    return training.dumps(training.train(reviews))


def build_words(reviews: list[training.Review]) -> str | None:
    try:
        jieba_dict = resources.files("jieba").joinpath("dict.txt").read_text(encoding="utf-8")
    except ModuleNotFoundError:
        return None
    version = importlib.metadata.version("jieba")
    return training.build_zh_words(reviews, jieba_dict, version)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS)
    ap.add_argument("--check", action="store_true", help="compare with the files, write nothing")
    args = ap.parse_args()
    if not (args.datasets / training.ZH_REVIEWS).exists():
        print(f"no zh review set under {args.datasets}", file=sys.stderr)
        return 2
    reviews = [
        r for r in training.load_reviews(args.datasets) if training.split_of(r.text) != "heldout"
    ]
    status = 0
    for name, build in ((model.MODEL_FILE, build_model), (zh_words.WORDS_FILE, build_words)):
        started = time.perf_counter()
        text = build(reviews)
        took = time.perf_counter() - started
        path = PACKAGE / name
        if text is None:
            print(f"{path}: skipped, jieba is not installed (pip install -e '.[train]')")
        elif args.check:
            same = path.exists() and path.read_text(encoding="utf-8") == text
            verdict = "up to date" if same else "DIFFERS from a fresh build"
            print(f"{path}: {verdict} ({took:.1f} s)")
            status = status or (0 if same else 1)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path} ({len(text.encode()) / 1024:.0f} kB, {took:.1f} s)")
    return status


if __name__ == "__main__":
    sys.exit(main())
