"""Comment sentiment for Chinese and English: a score in [-1, 1], a label and the language.

    >>> from deskpulse.sentiment import score_comment
    >>> score_comment("非常满意").label
    'positive'

Themes of negative feedback live in deskpulse.sentiment.themes (it loads jieba).
"""

from deskpulse.sentiment.lang import detect_language
from deskpulse.sentiment.scorer import LABELS, Sentiment, score_comment, score_comments

__all__ = ["LABELS", "Sentiment", "detect_language", "score_comment", "score_comments"]
