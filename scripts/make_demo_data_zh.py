#!/usr/bin/env python
"""Write the Chinese demo suite's data (tasks/data/demo_zh/*.jsonl) from small seeded grammars and templates.

Everything here was written by this project: no third-party text is copied. The output is deterministic:
running the script twice gives byte-identical files (sorted keys, UTF-8, "\\n" line endings).

    python scripts/make_demo_data_zh.py            # writes tasks/data/demo_zh/
    python scripts/make_demo_data_zh.py --out DIR  # somewhere else
"""
from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

SEED = 20240612
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "tasks" / "data" / "demo_zh"

SIZES = {  # task -> (test rows, train rows)
    "translation": (48, 2500),
    "summarization": (44, 1500),
    "qa": (48, 1500),
    "classification": (48, 700),
    "lm": (40, 1500),
}

# ---------------------------------------------------------------------------------------------------------------
# 1. Translation, English -> Chinese: a small grammar with both sides built from the same choices.
# ---------------------------------------------------------------------------------------------------------------

PEOPLE = [("the teacher", "老师"), ("my mother", "我的妈妈"), ("the little boy", "小男孩"), ("the doctor", "医生"),
          ("the student", "学生"), ("my friend", "我的朋友"), ("the old man", "老人"), ("her sister", "她的姐姐"),
          ("the baker", "面包师"), ("our neighbour", "我们的邻居"), ("the driver", "司机"), ("the girl", "女孩")]
ACTIONS = [("reads a book", "read a book", "看书"), ("drinks tea", "drink tea", "喝茶"),
           ("eats an apple", "eat an apple", "吃苹果"), ("writes a letter", "write a letter", "写信"),
           ("buys vegetables", "buy vegetables", "买菜"), ("plays football", "play football", "踢足球"),
           ("watches television", "watch television", "看电视"), ("cooks dinner", "cook dinner", "做晚饭"),
           ("sings a song", "sing a song", "唱歌"), ("learns Chinese", "learn Chinese", "学中文"),
           ("cleans the room", "clean the room", "打扫房间"), ("takes a walk", "take a walk", "散步"),
           ("draws a picture", "draw a picture", "画画"), ("waits for the bus", "wait for the bus", "等公共汽车")]
PLACES = [("at home", "在家"), ("in the park", "在公园"), ("at school", "在学校"), ("in the garden", "在花园里"),
          ("in the kitchen", "在厨房"), ("at the station", "在车站"), ("in the library", "在图书馆")]
TIMES = [("today", "今天"), ("every morning", "每天早上"), ("on Sunday", "星期天"), ("in the evening", "晚上"),
         ("tomorrow", "明天"), ("every day", "每天"), ("in the afternoon", "下午")]
FEELINGS = [("happy", "很高兴"), ("tired", "很累"), ("busy", "很忙"), ("hungry", "饿了")]


def translation_pair(rng: random.Random) -> tuple[str, str]:
    (pe, pz), (ae, base, az) = rng.choice(PEOPLE), rng.choice(ACTIONS)
    she = pe.split()[-1] in ("mother", "sister", "girl")
    shape = rng.random()
    if shape < 0.45:
        (le, lz), (te, tz) = rng.choice(PLACES), rng.choice(TIMES)
        return f"{cap(pe)} {ae} {le} {te}.", f"{tz}{pz}{lz}{az}。"
    if shape < 0.7:
        te, tz = rng.choice(TIMES)
        return f"{cap(te)} {pe} {ae}.", f"{tz}{pz}{az}。"
    if shape < 0.85:
        fe, fz = rng.choice(FEELINGS)
        return f"{cap(pe)} is {fe} because {'she' if she else 'he'} {ae}.", f"{pz}{fz}，因为{'她' if she else '他'}{az}。"
    le, lz = rng.choice(PLACES)
    return f"Does {pe} {base} {le}?", f"{pz}{lz}{az}吗？"


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


# ---------------------------------------------------------------------------------------------------------------
# 2. Summarization: short news items; the summary combines the key facts in one sentence.
# ---------------------------------------------------------------------------------------------------------------

CITIES = ["北京", "上海", "广州", "杭州", "成都", "西安", "南京", "武汉", "青岛", "长沙", "苏州", "昆明"]
COMPANIES = ["星河科技", "青山食品", "长风汽车", "明月电子", "东方书店", "海川物流", "金穗农业", "云帆软件"]
PRODUCTS = ["新款手机", "电动汽车", "儿童图书", "智能手表", "绿茶饮料", "家用机器人"]
TEAMS = ["红队", "蓝队", "飞龙队", "猛虎队", "雄鹰队", "海豚队"]
FESTIVALS = ["灯会", "美食节", "音乐节", "读书节", "花展", "龙舟赛"]
WEATHER = [("大雨", "出行请带伞"), ("大风", "请注意安全"), ("高温", "请多喝水"), ("大雪", "道路可能结冰")]


def summarization_item(rng: random.Random) -> tuple[str, str]:
    city = rng.choice(CITIES)
    kind = rng.randrange(4)
    if kind == 0:
        company, product, pct = rng.choice(COMPANIES), rng.choice(PRODUCTS), rng.randint(3, 40)
        up = rng.random() < 0.6
        doc = [f"{city}的{company}公司今天公布了上半年的业绩。",
               f"公司的利润比去年{'增长' if up else '下降'}了百分之{pct}。",
               f"公司表示，{product}的销售{'情况很好' if up else '不如预期'}。",
               rng.choice(["很多投资者对这个结果感到意外。", "公司计划明年在更多城市开店。", "公司的员工人数没有变化。"])]
        summary = f"{company}公司上半年利润{'增长' if up else '下降'}百分之{pct}。"
    elif kind == 1:
        home, away = rng.sample(TEAMS, 2)
        a, b = rng.randint(1, 5), rng.randint(0, 4)
        if a == b:
            a += 1
        doc = [f"昨天晚上，{home}在{city}主场迎战{away}。",
               "比赛开始后，两队都非常积极。",
               f"最后{home}以{a}比{b}{'战胜' if a > b else '输给'}了{away}。",
               rng.choice(["现场有两万多名观众。", "教练说队员们表现很好。", "下一场比赛将在下周举行。"])]
        summary = f"{home}在{city}以{a}比{b}{'战胜' if a > b else '输给'}{away}。"
    elif kind == 2:
        festival, days = rng.choice(FESTIVALS), rng.randint(2, 9)
        month = rng.randint(1, 12)
        doc = [f"{city}将在{month}月举办一年一度的{festival}。",
               f"今年的{festival}将持续{days}天。",
               rng.choice(["主办方预计会有很多游客前来参观。", "活动期间公园免费开放。", "市民可以在网上预约门票。"]),
               "当地的饭店和商店也在做准备。"]
        summary = f"{city}{month}月将举办为期{days}天的{festival}。"
    else:
        (weather, advice), day = rng.choice(WEATHER), rng.choice(["明天", "周末", "今天下午"])
        doc = [f"气象台发布消息说，{city}{day}会有{weather}。",
               f"专家提醒市民{advice}。",
               rng.choice(["学校已经做好了准备。", "部分航班可能会推迟。", "公共汽车会正常运行。"])]
        summary = f"{city}{day}有{weather}，{advice}。"
    return "".join(doc), summary


# ---------------------------------------------------------------------------------------------------------------
# 3. Extractive QA: every answer is a substring of the passage.
# ---------------------------------------------------------------------------------------------------------------

SURNAMES = ["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴"]
GIVEN = ["小明", "丽华", "建国", "晓雨", "志强", "美玲", "天宇", "海燕", "文博", "静怡"]
JOBS = ["医生", "老师", "工程师", "画家", "厨师", "记者", "作家", "律师"]
HOBBIES = ["爬山", "游泳", "下棋", "弹钢琴", "种花", "钓鱼", "跑步", "拍照"]
ANIMALS = ["一只猫", "一条狗", "两只鸟", "一只兔子"]


def qa_item(rng: random.Random) -> dict:
    name = rng.choice(SURNAMES) + rng.choice(GIVEN)
    city, job, hobby = rng.choice(CITIES), rng.choice(JOBS), rng.choice(HOBBIES)
    year, pet = rng.randint(1960, 2005), rng.choice(ANIMALS)
    context = (f"{name}是一名{job}，{year}年出生在{city}。{name}平时工作很忙，但是周末喜欢{hobby}。"
               f"{name}家里养了{pet}。")
    questions = [
        (f"{name}是做什么工作的？", [job, f"一名{job}"]),
        (f"{name}是哪一年出生的？", [f"{year}年", str(year)]),
        (f"{name}出生在哪里？", [city]),
        (f"{name}周末喜欢做什么？", [hobby]),
        (f"{name}家里养了什么？", [pet]),
    ]
    question, answers = rng.choice(questions)
    return {"context": context, "question": question, "answers": answers}


# ---------------------------------------------------------------------------------------------------------------
# 4. Classification: short reviews, positive / negative / neutral.
# ---------------------------------------------------------------------------------------------------------------

ITEMS = ["这部电影", "这本书", "这家饭店", "这款手机", "这个酒店", "这双鞋", "这首歌", "这台电脑", "这家咖啡馆",
         "这个游戏", "这件衣服", "这个公园"]
POSITIVE = ["非常好，我很喜欢", "质量很好，值得推荐", "让人很满意", "比我想的还要好", "太棒了，下次还会再来"]
NEGATIVE = ["太差了，很失望", "质量不好，不推荐", "让人很生气", "完全不值这个价钱", "服务很差，再也不来了"]
NEUTRAL = ["还可以，没有特别的感觉", "一般般，和别的差不多", "价格正常，质量普通", "不好也不坏", "说不上喜欢，也不讨厌"]


def classification_item(rng: random.Random, label: str) -> dict:
    phrases = {"positive": POSITIVE, "negative": NEGATIVE, "neutral": NEUTRAL}[label]
    text = f"{rng.choice(ITEMS)}{rng.choice(phrases)}。"
    if rng.random() < 0.4:
        text += rng.choice(["我上周末去试了一下。", "朋友推荐给我的。", "这是我第二次买。", "我是在网上看到的。",
                            "我和家人一起去的。", "已经用了一个月了。"])
    return {"text": text, "label": label}


# ---------------------------------------------------------------------------------------------------------------
# 5. Language modeling: short paragraphs.
# ---------------------------------------------------------------------------------------------------------------


def lm_item(rng: random.Random) -> str:
    city = rng.choice(CITIES)
    kind = rng.randrange(3)
    if kind == 0:
        (weather, advice), temp = rng.choice(WEATHER), rng.randint(-5, 38)
        return f"{city}今天的最高气温是{temp}度。{rng.choice(['上午', '下午', '晚上'])}可能会有{weather}，{advice}。"
    if kind == 1:
        name, hobby = rng.choice(SURNAMES) + rng.choice(GIVEN), rng.choice(HOBBIES)
        return (f"{name}住在{city}。每个星期天，{name}都会和朋友一起去{hobby}。"
                f"{rng.choice(['他们觉得这样很开心。', '回家以后大家一起吃晚饭。', '这是他们多年的习惯。'])}")
    festival, month = rng.choice(FESTIVALS), rng.randint(1, 12)
    return f"{month}月的{festival}是{city}最热闹的时候。街上到处都是游客，{rng.choice(['饭店里坐满了人。', '孩子们笑得很开心。', '晚上还有烟花表演。'])}"


# ---------------------------------------------------------------------------------------------------------------


def unique_rows(make, n_total: int, key) -> list:
    rows, seen = [], set()
    while len(rows) < n_total:
        row = make()
        k = key(row)
        if k not in seen:
            seen.add(k)
            rows.append(row)
    return rows


def build(seed: int = SEED) -> dict[str, list[dict]]:
    rng = random.Random(seed)
    out: dict[str, list[dict]] = {}

    def split(task: str, rows: list[dict]) -> None:
        n_test, _ = SIZES[task]
        for split_name, part in (("test", rows[:n_test]), ("train", rows[n_test:])):
            out[f"{task}_{split_name}"] = [{"id": f"{task[:3]}-{split_name}-{i:04d}", **r} for i, r in enumerate(part)]

    total = {task: sum(SIZES[task]) for task in SIZES}
    pairs = unique_rows(lambda: translation_pair(rng), total["translation"], lambda p: p[0])
    split("translation", [{"en": en, "zh": zh} for en, zh in pairs])
    items = unique_rows(lambda: summarization_item(rng), total["summarization"], lambda p: p[0])
    split("summarization", [{"document": d, "summary": s} for d, s in items])
    split("qa", unique_rows(lambda: qa_item(rng), total["qa"], lambda r: (r["context"], r["question"])))
    labels = ["positive"] * 5 + ["negative"] * 4 + ["neutral"] * 3
    split("classification", unique_rows(lambda: classification_item(rng, rng.choice(labels)), total["classification"],
                                        lambda r: r["text"]))
    split("lm", [{"text": t} for t in unique_rows(lambda: lm_item(rng), total["lm"], lambda t: t)])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, rows in build().items():
        text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows)
        (args.out / f"{name}.jsonl").write_text(text, encoding="utf-8", newline="\n")
        print(f"{args.out / name}.jsonl: {len(rows)} rows")


if __name__ == "__main__":
    main()
