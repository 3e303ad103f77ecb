"""Survey comments in English, Chinese and a mix of both.

Negative comments name a concrete cause (refund, delay, broken part, rude reply, ...) in words a
themes analysis can pick up in either language; variety comes from templates x slots (product,
duration, degree words, counts) x optional openers and closers, with negation on both sides.
The texts are written by hand: the Chinese review dataset is kept for tuning sentiment and is
deliberately not recycled here.
"""

from __future__ import annotations

import random

from deskpulse.simulator.catalog import PRODUCTS

CAUSES = (
    "refund",
    "delay",
    "broken_part",
    "rude_reply",
    "billing",
    "login",
    "shipping",
    "not_fixed",
    "transferred",
    "outage",
    "bug",
)

NEGATIVE = {
    "refund": {
        "en": [
            "Still waiting for my refund for the {p}, it has been {d}.",
            "I returned the {p} {d} ago and the refund never arrived.",
            "Refund was approved but the money is not back on my card.",
            "They keep promising a refund and nothing happens.",
            "No refund after {d}, {v} frustrating.",
            "Asked for a refund {n} times and got no answer.",
        ],
        "zh": [
            "退款{d}了还没到账，{v}失望。",
            "{p}退货{d}了，退款一直没处理。",
            "申请退款{n}次都没有结果，客服只会让我等。",
            "说好的退款到现在也没退回来。",
            "退款流程{v}麻烦，钱还没退。",
        ],
    },
    "delay": {
        "en": [
            "Waited {d} for a reply, {v} slow support.",
            "Nobody answered my ticket for {d}.",
            "Response was way too slow, I had to chase them {n} times.",
            "It took {d} to get a first answer.",
            "Slow, slow, slow. Still waiting for help after {d}.",
        ],
        "zh": [
            "等了{d}才有人回复，效率太低了。",
            "工单提交{d}了，还在等人处理。",
            "回复太慢了，催了{n}次。",
            "客服响应{v}慢，等得心累。",
            "处理速度太慢，{d}还没有结果。",
        ],
    },
    "broken_part": {
        "en": [
            "The {p} arrived broken and the replacement part is broken too.",
            "Screen cracked after {d}, clearly a defective part.",
            "The {p} stopped working, the charging port is broken.",
            "Got a defective {p}, the hinge broke in the first week.",
            "Broken part again, the quality of the {p} is {v} poor.",
        ],
        "zh": [
            "{p}收到就是坏的，配件也有质量问题。",
            "用了{d}{p}屏幕就裂了，明显是质量问题。",
            "{p}的充电口坏了，换了一次还是坏。",
            "零件坏了，{p}根本没法用。",
            "{p}质量{v}差，刚用就坏了。",
        ],
    },
    "rude_reply": {
        "en": [
            "The agent was rude and hung up on me.",
            "{V} rude reply from support, felt like they did not care.",
            "Unprofessional and impolite, the agent was rude to me.",
            "The person on the phone was condescending and rude.",
            "Rude answer to a simple question about my {p}.",
        ],
        "zh": [
            "客服态度{v}差，说话很不耐烦。",
            "客服态度恶劣，直接挂我电话。",
            "回复很敷衍，态度极差。",
            "客服很不礼貌，一点都不专业。",
            "问了一个关于{p}的简单问题，客服态度很差。",
        ],
    },
    "billing": {
        "en": [
            "I was charged twice for the {p} and nobody fixes the bill.",
            "Wrong invoice again, billing is a mess.",
            "Billing error: they charged my card after I cancelled.",
            "Overcharged on my bill, {d} later still not corrected.",
        ],
        "zh": [
            "重复扣费了，账单到现在还是错的。",
            "取消了还在扣费，{v}离谱。",
            "发票开错了{n}次，账单一团糟。",
            "{p}的账单多扣了钱，{d}了还没改。",
        ],
    },
    "login": {
        "en": [
            "I still cannot log in to my account.",
            "Password reset link never works, locked out for {d}.",
            "Login keeps failing and support could not help.",
            "Account locked, can't sign in, {v} annoying.",
        ],
        "zh": [
            "账号一直登录不上，密码重置也没用。",
            "账户被锁了{d}，还是无法登录。",
            "登录总是失败，客服也解决不了。",
            "密码重置了{n}次还是登不上，{v}烦。",
        ],
    },
    "shipping": {
        "en": [
            "My {p} has been stuck in shipping for {d}.",
            "Delivery was late and the courier lost the package.",
            "Tracking hasn't updated in {d}, where is my package?",
            "Shipping took {d}, way longer than promised.",
        ],
        "zh": [
            "物流{d}都没更新，快递到底在哪？",
            "发货太慢了，{d}才收到{p}。",
            "快递把包裹弄丢了，物流{v}差。",
            "说好的三天送达，结果{d}还没收到{p}。",
        ],
    },
    "not_fixed": {
        "en": [
            "Problem is still not fixed, the same issue came back.",
            "They closed my ticket but the {p} problem is not solved.",
            "Marked as resolved without fixing anything.",
            "Had to reopen the ticket, the {p} still does not work.",
        ],
        "zh": [
            "问题根本没解决，又出现了同样的故障。",
            "工单关了但{p}的问题还在。",
            "说是解决了，其实什么都没修好。",
            "{p}还是不能用，只能重新提交工单。",
        ],
    },
    "transferred": {
        "en": [
            "Transferred to {n} different teams and nobody owns my issue.",
            "I was passed around from one agent to another.",
            "Escalated twice and still bounced between departments.",
        ],
        "zh": [
            "被转来转去，没人负责我的问题。",
            "换了{n}个客服，每次都要重新说一遍。",
            "升级了两次还是在部门之间推来推去。",
        ],
    },
    "outage": {
        "en": [
            "Internet down for {d}, the {p} keeps dropping the connection.",
            "Service outage again, no connection since yesterday.",
            "The network keeps going down and support has no answers.",
        ],
        "zh": [
            "断网{d}了，{p}一直连不上。",
            "网络老是掉线，客服也没有办法。",
            "又断网了，从昨天到现在都连不上。",
        ],
    },
    "bug": {
        "en": [
            "The app crashes every time I open it on my {p}.",
            "The update broke the {p}, it keeps freezing. Obvious bug.",
            "Same bug since the last update, the {p} app crashes.",
        ],
        "zh": [
            "{p}的应用一打开就闪退。",
            "更新以后{p}总是死机，明显是bug。",
            "上次更新后一直有这个bug，{p}卡死。",
        ],
    },
}

POSITIVE = {
    "en": [
        "Quick reply and the {p} issue was solved, thank you!",
        "{V} helpful agent, fixed my problem in {m} minutes.",
        "Great support, friendly and fast.",
        "Problem solved on the first call, excellent service.",
        "{a} was patient and explained everything clearly.",
        "Fast refund, no hassle.",
        "Replacement {p} arrived quickly, happy with the service.",
        "Not bad at all, the issue was fixed quickly.",
        "Support was {v} good, the {p} works perfectly now.",
        "Thanks {a}, {v} professional and kind.",
        "Got an answer in {m} minutes, impressive.",
        "{a} sorted out my {p} in no time.",
        "Smooth and easy, I did not have to repeat myself.",
        "Clear instructions, the {p} is back to normal.",
        "Really appreciate the quick follow-up from {a}.",
    ],
    "zh": [
        "客服回复很快，问题解决了，谢谢！",
        "{p}的问题当天就处理好了，{v}满意。",
        "客服{a}态度很好，很耐心。",
        "效率高，服务好，点赞！",
        "退款很快就到账了，满意。",
        "换货很及时，{p}用着不错。",
        "还不错，问题解决了。",
        "专业又热情，五星好评。",
        "{v}感谢客服，{p}现在一切正常。",
        "{m}分钟就有人回复，{v}高效。",
        "{a}讲解得很清楚，{p}已经修好了。",
        "服务{v}周到，下次还会再来。",
        "没想到这么快就解决了，{v}满意。",
    ],
}

NEUTRAL = {
    "en": [
        "It was ok, took a while but got sorted.",
        "Average service. The {p} works now.",
        "Fine, nothing special.",
        "Solved eventually, the process could be simpler.",
        "OK.",
        "Not great, not terrible.",
        "The {p} works again, though I had to explain it twice.",
        "Answer was correct but it took {d}.",
        "Decent, but the form for the {p} is confusing.",
        "No complaints, no praise either.",
    ],
    "zh": [
        "一般般吧，问题最后解决了。",
        "还行，就是等的时间有点长。",
        "服务中规中矩。",
        "问题解决了，流程可以再简单点。",
        "还可以。",
        "{p}能用了，不过解释了两遍。",
        "回答是对的，就是花了{d}。",
        "整体一般，{p}的报修流程有点复杂。",
    ],
}

OPENERS = {
    "en": ["Honestly, ", "Well, ", "Seriously, ", "To be honest, ", "Again: "],
    "zh": ["说实话，", "唉，", "真的，", "老实说，"],
}
NEGATIVE_CLOSERS = {
    "en": [
        "Very disappointed.",
        "Not happy at all.",
        "Terrible experience.",
        "Never buying again.",
        "Not acceptable.",
        "Worst support ever.",
        "I am not satisfied.",
    ],
    "zh": ["太失望了。", "一点都不满意。", "再也不买了。", "差评！", "体验很差。", "非常不满意。"],
}
POSITIVE_CLOSERS = {
    "en": ["Thanks again!", "Keep it up.", "Five stars.", "Well done.", "Very happy.", ":)"],
    "zh": ["谢谢！", "继续保持。", "好评！", "赞一个。", "非常满意！"],
}
POSITIVE_OPENERS = {
    "en": ["Wow, ", "Honestly, ", "Great news: ", "Thank you! "],
    "zh": ["真心的，", "说实话，", "谢谢！"],
}
AGENTS = {
    "en": ["Anna", "Tom", "Priya", "Carlos", "Mei", "Sam", "Jonas", "Aisha"],
    "zh": ["小王", "小李", "张师傅", "客服小美", "工程师"],
}
MINUTES = ["2", "5", "10", "15", "20"]
DURATIONS = {
    "en": ["two days", "a week", "10 days", "three weeks", "5 days", "over a month", "48 hours"],
    "zh": ["两天", "一个星期", "十天", "三周", "五天", "一个多月", "48小时"],
}
NEGATIVE_DEGREE = {
    "en": ["very", "really", "extremely", "so", "incredibly", "quite"],
    "zh": ["非常", "特别", "十分", "很", "极其", "超级"],
}
POSITIVE_DEGREE = {
    "en": ["very", "really", "super", "extremely"],
    "zh": ["非常", "特别", "很", "超级"],
}
# English words Chinese-writing customers drop into a sentence (code-mixing).
MIXED_WORDS = [
    ("退款", "refund"),
    ("物流", "delivery"),
    ("快递", "courier"),
    ("登录", "login"),
    ("客服", "support"),
    ("账单", "bill"),
    ("应用", "app"),
    ("工单", "ticket"),
]


class CommentWriter:
    def __init__(self, rng: random.Random):
        self.rng = rng

    def write(self, tone: str, lang: str, product: str, cause: str | None = None) -> str:
        """tone: negative/neutral/positive; lang: en/zh/mixed; cause only for negative."""
        rng = self.rng
        base = (
            "zh" if lang == "mixed" and rng.random() < 0.7 else ("en" if lang == "mixed" else lang)
        )
        if tone == "negative":
            text = self._negative(base, product, cause or "delay")
        elif tone == "positive":
            text = self._fill(rng.choice(POSITIVE[base]), base, product, POSITIVE_DEGREE)
            sep = " " if base == "en" else ""
            if rng.random() < 0.2:
                text = _open(rng.choice(POSITIVE_OPENERS[base]), text, base)
            if rng.random() < 0.4:
                text = f"{text}{sep}{rng.choice(POSITIVE_CLOSERS[base])}"
        else:
            text = self._fill(rng.choice(NEUTRAL[base]), base, product, POSITIVE_DEGREE)
        if lang == "mixed":
            text = self._mix(text, base, tone)
        return text

    def _negative(self, lang: str, product: str, cause: str) -> str:
        rng = self.rng
        text = self._fill(rng.choice(NEGATIVE[cause][lang]), lang, product, NEGATIVE_DEGREE)
        if rng.random() < 0.25:
            text = _open(rng.choice(OPENERS[lang]), text, lang)
        if rng.random() < 0.5:
            sep = " " if lang == "en" else ""
            text = f"{text}{sep}{rng.choice(NEGATIVE_CLOSERS[lang])}"
        return text

    def _fill(self, template: str, lang: str, product: str, degree: dict) -> str:
        if "{" not in template:
            return template
        rng = self.rng
        names = PRODUCTS[product][1 if lang == "en" else 2]
        v = rng.choice(degree[lang])
        text = template.format(
            p=rng.choice(names),
            d=rng.choice(DURATIONS[lang]),
            v=v,
            V=v.capitalize(),
            n=rng.randint(2, 6),
            m=rng.choice(MINUTES),
            a=rng.choice(AGENTS[lang]),
        )
        return text[0].upper() + text[1:]

    def _mix(self, text: str, base: str, tone: str) -> str:
        rng = self.rng
        if base == "en":
            tail = {"negative": NEGATIVE_CLOSERS, "positive": POSITIVE_CLOSERS}.get(tone)
            return f"{text} {rng.choice(tail['zh']) if tail else '还行吧。'}"
        for zh, en in MIXED_WORDS:
            if zh in text:
                return text.replace(zh, en, 1)
        return text + {"negative": " so bad", "positive": " thanks!"}.get(tone, " ok")


_NAMES = {w for names in AGENTS["en"] for w in names.split()} | {
    w for _, en, _ in PRODUCTS.values() for name in en for w in name.split() if w[0].isupper()
}


def _open(opener: str, text: str, lang: str) -> str:
    """An opener before a sentence: English goes on in lower case unless a name comes first."""
    first = text.split(" ", 1)[0].strip(",.")
    if lang == "en" and opener.endswith((", ", ": ")) and first not in _NAMES:
        text = text[0].lower() + text[1:]
    return opener + text
