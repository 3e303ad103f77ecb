"""Chinese word segmentation for theme terms: jieba's method on a small dictionary.

zh_words.txt (made by scripts/train_sentiment.py) keeps the ~45,000 entries of jieba's
dictionary that are common or occur in the review set. Segmentation picks the split with
the highest product of word frequencies (jieba's DAG + dynamic programming, without its
HMM for unknown words). Loading costs ~6 MB, against ~90 MB for jieba itself, which
matters in a stream worker.
"""

import math
from functools import cache
from importlib import resources

from deskpulse.sentiment import lexicon

WORDS_FILE = "zh_words.txt"
MAX_WORD = 6
# Frequency given to lexicon and service-desk words missing from the dictionary: enough
# to win over a split into single characters.
DEFAULT_FREQ = 1000

# Service-desk words jieba's dictionary lacks or ranks too low to keep whole.
DESK_WORDS = (
    "工单 报修 客服 售后 退款 退货 换货 到账 账号 密码 登录 登陆 网速 掉线 断网 宽带 路由器"
    " 打印机 邮箱 权限 系统 软件 插件 驱动 蓝屏 重装 配送 骑手 外卖 快递员 快递小哥 前台"
    " 隔音 空调 热水 充电器 充电宝 耳机 屏幕 电池 续航 发票 优惠券 会员 积分 运费 安装费"
).split()


class Dictionary:
    def __init__(self, freqs: dict[str, int]) -> None:
        total = sum(freqs.values())
        self.log_total = math.log(total)
        self.log_freq = {w: math.log(f) for w, f in freqs.items()}

    def cut(self, run: str) -> list[str]:
        """Most probable split of a run of Han characters."""
        n = len(run)
        log_freq, log_total = self.log_freq, self.log_total
        best = [0.0] * (n + 1)
        end = [0] * (n + 1)
        for i in range(n - 1, -1, -1):
            best_score, best_end = -math.inf, i + 1
            for j in range(i + 1, min(n, i + MAX_WORD) + 1):
                lf = log_freq.get(run[i:j])
                if lf is None and j > i + 1:
                    continue
                score = (lf or 0.0) - log_total + best[j]
                if score > best_score:  # first (shortest) wins a tie: deterministic
                    best_score, best_end = score, j
            best[i], end[i] = best_score, best_end
        out = []
        i = 0
        while i < n:
            out.append(run[i : end[i]])
            i = end[i]
        return out


def _read() -> dict[str, int]:
    text = resources.files(__package__).joinpath(WORDS_FILE).read_text(encoding="utf-8")
    freqs = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            word, freq = line.split("\t")
            freqs[word] = int(freq)
    return freqs


@cache
def dictionary() -> Dictionary:
    freqs = _read()
    extra = [*DESK_WORDS, *lexicon.chinese(), *lexicon.NEGATORS_ZH, *lexicon.BOOSTERS_ZH]
    for word in extra:
        if 1 < len(word) <= MAX_WORD:
            freqs.setdefault(word, DEFAULT_FREQ)
    return Dictionary(freqs)
