#!/usr/bin/env python
"""Write the demo suite's data (tasks/data/demo/*.jsonl) from small seeded grammars and templates.

Everything here was written by this project: no third-party text is copied. The output is deterministic:
running the script twice gives byte-identical files (sorted keys, UTF-8, "\\n" line endings).

    python scripts/make_demo_data.py            # writes tasks/data/demo/
    python scripts/make_demo_data.py --out DIR  # somewhere else
"""
from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

SEED = 20240611
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "tasks" / "data" / "demo"

SIZES = {
    "translation": (60, 3000),
    "summarization": (50, 2000),
    "qa": (50, 2000),
    "classification": (60, 1000),
    "lm": (40, 2000),
}


def cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def a_an(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def num(n: int) -> str:
    return f"{n:,}"


NUM_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
             "twelve"]

# ----------------------------------------------------------------------------------------------------------
# 1. Translation: a small German grammar with its English counterpart.
# ----------------------------------------------------------------------------------------------------------

# Nouns: German stem, gender, English, tags, optional oblique form (weak nouns), allowed adjectives.
ANIMATE_ADJ = ["alt", "jung", "klein", "groß", "müd", "hungrig", "freundlich"]
NOUNS = [
    # people
    dict(de="Mann", g="m", en="man", tags={"person"}, adj=ANIMATE_ADJ),
    dict(de="Frau", g="f", en="woman", tags={"person"}, adj=ANIMATE_ADJ),
    dict(de="Kind", g="n", en="child", tags={"person"}, adj=["klein", "müd", "hungrig", "freundlich"]),
    dict(de="Junge", g="m", en="boy", tags={"person"}, obl="Jungen", adj=["klein", "groß", "müd", "hungrig", "freundlich"]),
    dict(de="Mädchen", g="n", en="girl", tags={"person"}, adj=["klein", "groß", "müd", "hungrig", "freundlich"]),
    dict(de="Lehrer", g="m", en="teacher", tags={"person"}, adj=ANIMATE_ADJ),
    dict(de="Ärztin", g="f", en="doctor", tags={"person"}, adj=["alt", "jung", "müd", "freundlich"]),
    dict(de="Bäcker", g="m", en="baker", tags={"person"}, adj=["alt", "jung", "müd", "freundlich"]),
    dict(de="Großmutter", g="f", en="grandmother", tags={"person"}, adj=["alt", "klein", "müd", "freundlich"]),
    # animals
    dict(de="Hund", g="m", en="dog", tags={"animal"}, adj=ANIMATE_ADJ),
    dict(de="Katze", g="f", en="cat", tags={"animal"}, adj=ANIMATE_ADJ),
    dict(de="Pferd", g="n", en="horse", tags={"animal"}, adj=["alt", "jung", "groß", "müd", "hungrig", "schön"]),
    dict(de="Vogel", g="m", en="bird", tags={"animal"}, adj=["klein", "hungrig", "schön", "blau"]),
    dict(de="Maus", g="f", en="mouse", tags={"animal"}, adj=["klein", "hungrig", "müd"]),
    # things
    dict(de="Ball", g="m", en="ball", tags={"thing", "portable"}, adj=["rot", "blau", "neu", "klein", "groß"]),
    dict(de="Buch", g="n", en="book", tags={"thing", "portable", "readable"}, adj=["alt", "neu", "dick", "schön", "rot"]),
    dict(de="Tasche", g="f", en="bag", tags={"thing", "portable"}, adj=["alt", "neu", "schwer", "rot", "blau"]),
    dict(de="Hut", g="m", en="hat", tags={"thing", "portable"}, adj=["alt", "neu", "rot", "blau", "schön"]),
    dict(de="Stuhl", g="m", en="chair", tags={"thing", "portable"}, adj=["alt", "neu", "schwer", "rot"]),
    dict(de="Schlüssel", g="m", en="key", tags={"thing", "portable"}, adj=["alt", "neu", "klein"]),
    dict(de="Tasse", g="f", en="cup", tags={"thing", "portable"}, adj=["blau", "rot", "neu", "klein"]),
    dict(de="Fahrrad", g="n", en="bicycle", tags={"thing"}, adj=["alt", "neu", "rot", "blau", "schnell"]),
    dict(de="Auto", g="n", en="car", tags={"thing"}, adj=["alt", "neu", "rot", "blau", "schnell", "klein"]),
    dict(de="Lampe", g="f", en="lamp", tags={"thing", "portable"}, adj=["alt", "neu", "klein", "schön"]),
    dict(de="Brief", g="m", en="letter", tags={"thing", "portable", "readable"}, adj=["lang", "kurz", "alt"]),
    dict(de="Zeitung", g="f", en="newspaper", tags={"thing", "portable", "readable"}, adj=["alt", "neu"]),
    dict(de="Regenschirm", g="m", en="umbrella", tags={"thing", "portable"}, adj=["alt", "neu", "rot", "blau"]),
    dict(de="Tisch", g="m", en="table", tags={"thing"}, adj=["alt", "neu", "groß", "klein"]),
    # food and drink
    dict(de="Apfel", g="m", en="apple", tags={"food", "count"}, adj=["rot", "frisch", "süß", "groß"]),
    dict(de="Kuchen", g="m", en="cake", tags={"food", "count"}, adj=["frisch", "süß", "groß", "warm"]),
    dict(de="Ei", g="n", en="egg", tags={"food", "count"}, adj=["frisch", "warm"]),
    dict(de="Banane", g="f", en="banana", tags={"food", "count"}, adj=["süß", "frisch", "groß"]),
    dict(de="Brot", g="n", en="bread", tags={"food"}, adj=["frisch", "warm", "alt"]),
    dict(de="Suppe", g="f", en="soup", tags={"food"}, adj=["warm", "kalt", "heiß"]),
    dict(de="Käse", g="m", en="cheese", tags={"food"}, adj=["frisch", "alt"]),
    dict(de="Milch", g="f", en="milk", tags={"drink"}, adj=["kalt", "warm", "frisch"]),
    dict(de="Wasser", g="n", en="water", tags={"drink"}, adj=["kalt", "warm"]),
    dict(de="Kaffee", g="m", en="coffee", tags={"drink"}, adj=["heiß", "kalt", "stark"]),
    dict(de="Tee", g="m", en="tea", tags={"drink"}, adj=["heiß", "kalt", "süß"]),
    dict(de="Saft", g="m", en="juice", tags={"drink"}, adj=["kalt", "frisch", "süß"]),
]
ADJ = {
    "alt": ("alt", "old"), "jung": ("jung", "young"), "klein": ("klein", "small"), "groß": ("groß", "big"),
    "müd": ("müde", "tired"), "hungrig": ("hungrig", "hungry"), "freundlich": ("freundlich", "friendly"),
    "schön": ("schön", "beautiful"), "blau": ("blau", "blue"), "rot": ("rot", "red"), "neu": ("neu", "new"),
    "dick": ("dick", "thick"), "schwer": ("schwer", "heavy"), "schnell": ("schnell", "fast"),
    "lang": ("lang", "long"), "kurz": ("kurz", "short"), "frisch": ("frisch", "fresh"), "süß": ("süß", "sweet"),
    "warm": ("warm", "warm"), "kalt": ("kalt", "cold"), "heiß": ("heiß", "hot"), "stark": ("stark", "strong"),
}  # stem -> (predicative German, English)

DEF_ART = {"nom": {"m": "der", "f": "die", "n": "das"}, "acc": {"m": "den", "f": "die", "n": "das"},
           "dat": {"m": "dem", "f": "der", "n": "dem"}}
INDEF_ART = {"nom": {"m": "ein", "f": "eine", "n": "ein"}, "acc": {"m": "einen", "f": "eine", "n": "ein"},
             "dat": {"m": "einem", "f": "einer", "n": "einem"}}


def adj_ending(det: str, case: str, g: str) -> str:
    if det == "def":
        if case == "nom":
            return "e"
        if case == "acc":
            return "en" if g == "m" else "e"
        return "en"
    # ein / kein
    if case == "dat":
        return "en"
    if case == "nom":
        return {"m": "er", "f": "e", "n": "es"}[g]
    return {"m": "en", "f": "e", "n": "es"}[g]


def adj_form(stem: str, ending: str) -> str:
    # "müd" + "e" -> "müde"; predicative "müde" keeps its e.
    return stem + ending


def np_de(noun: dict, case: str, det: str, adj: str | None) -> str:
    g = noun["g"]
    if det == "def":
        art = DEF_ART[case][g]
    elif det == "indef":
        art = INDEF_ART[case][g]
    else:  # kein
        art = "k" + INDEF_ART[case][g]
    form = noun.get("obl", noun["de"]) if case != "nom" else noun["de"]
    if adj:
        return f"{art} {adj_form(adj, adj_ending(det, case, g))} {form}"
    return f"{art} {form}"


def np_en(noun: dict, det: str, adj: str | None) -> str:
    words = ([ADJ[adj][1]] if adj else []) + [noun["en"]]
    phrase = " ".join(words)
    if det == "def":
        return "the " + phrase
    return f"{a_an(phrase)} {phrase}"  # indef and kein ("does not see a ...")


# Verbs: forms for (ich, du, er/sie/es, wir), English base and 3sg, subject and object restrictions.
VERBS_TR = [
    dict(de=("sehe", "siehst", "sieht", "sehen"), en=("see", "sees"), obj={"person", "animal", "thing"}),
    dict(de=("suche", "suchst", "sucht", "suchen"), en=("look for", "looks for"), obj={"person", "animal", "thing"}),
    dict(de=("finde", "findest", "findet", "finden"), en=("find", "finds"), obj={"animal", "thing"}),
    dict(de=("kaufe", "kaufst", "kauft", "kaufen"), en=("buy", "buys"), obj={"thing", "food", "drink"}, person=True),
    dict(de=("mag", "magst", "mag", "mögen"), en=("like", "likes"), obj={"person", "animal", "food", "drink"}, nofreq=True, notime=True),
    dict(de=("lese", "liest", "liest", "lesen"), en=("read", "reads"), obj={"readable"}, person=True),
    dict(de=("esse", "isst", "isst", "essen"), en=("eat", "eats"), obj={"food"}),
    dict(de=("trinke", "trinkst", "trinkt", "trinken"), en=("drink", "drinks"), obj={"drink"}),
    dict(de=("trage", "trägst", "trägt", "tragen"), en=("carry", "carries"), obj={"portable"}, person=True),
    dict(de=("brauche", "brauchst", "braucht", "brauchen"), en=("need", "needs"), obj={"thing", "food", "drink"}, person=True),
    dict(de=("habe", "hast", "hat", "haben"), en=("have", "has"), obj={"thing", "animal"}, person=True, nofreq=True),
    dict(de=("füttere", "fütterst", "füttert", "füttern"), en=("feed", "feeds"), obj={"animal"}, person=True),
    dict(de=("male", "malst", "malt", "malen"), en=("paint", "paints"), obj={"person", "animal", "thing"}, person=True),
    dict(de=("besuche", "besuchst", "besucht", "besuchen"), en=("visit", "visits"), obj={"person"}, person=True),
]
VERBS_IN = [
    dict(de=("spiele", "spielst", "spielt", "spielen"), en=("play", "plays")),
    dict(de=("schlafe", "schläfst", "schläft", "schlafen"), en=("sleep", "sleeps")),
    dict(de=("warte", "wartest", "wartet", "warten"), en=("wait", "waits")),
    dict(de=("arbeite", "arbeitest", "arbeitet", "arbeiten"), en=("work", "works"), person=True),
    dict(de=("laufe", "läufst", "läuft", "laufen"), en=("run", "runs")),
    dict(de=("singe", "singst", "singt", "singen"), en=("sing", "sings"), person=True),
    dict(de=("lache", "lachst", "lacht", "lachen"), en=("laugh", "laughs"), person=True),
    dict(de=("sitze", "sitzt", "sitzt", "sitzen"), en=("sit", "sits")),
]
SEIN = ("bin", "bist", "ist", "sind")
BE_EN = ("am", "are", "is", "are")

# Places: German preposition, noun, gender; English preposition; allowed adjectives.
PLACES = [
    ("in", "Garten", "m", "in", "garden", ["groß", "klein", "alt"]),
    ("in", "Park", "m", "in", "park", ["groß", "klein", "alt"]),
    ("in", "Wald", "m", "in", "forest", ["groß", "dunkel"]),
    ("in", "Haus", "n", "in", "house", ["groß", "klein", "alt", "neu"]),
    ("in", "Küche", "f", "in", "kitchen", ["klein", "alt", "neu"]),
    ("in", "Stadt", "f", "in", "town", ["klein", "alt"]),
    ("in", "Bibliothek", "f", "in", "library", ["alt", "neu"]),
    ("in", "Café", "n", "in", "café", ["klein", "alt", "neu"]),
    ("an", "See", "m", "by", "lake", ["groß", "klein", "ruhig"]),
    ("an", "Bahnhof", "m", "at", "station", ["alt", "neu"]),
    ("auf", "Markt", "m", "at", "market", ["alt", "groß"]),
    ("auf", "Straße", "f", "on", "street", ["alt", "ruhig"]),
    ("auf", "Wiese", "f", "in", "meadow", ["groß", "grün"]),
]
ADJ.update({"dunkel": ("dunkel", "dark"), "ruhig": ("ruhig", "quiet"), "grün": ("grün", "green")})


def place_phrase(rng: random.Random) -> tuple[str, str]:
    prep, noun, g, en_prep, en_noun, adjs = rng.choice(PLACES)
    adj = rng.choice(adjs) if rng.random() < 0.3 else None
    art = DEF_ART["dat"][g]
    if adj:
        stem = "dunkl" if adj == "dunkel" else adj
        de_noun = f"{stem}en {noun}"
    else:
        de_noun = noun
    if art == "dem" and prep in ("in", "an"):
        de = f"{'im' if prep == 'in' else 'am'} {de_noun}"
    else:
        de = f"{prep} {art} {de_noun}"
    en = f"{en_prep} the {ADJ[adj][1] + ' ' if adj else ''}{en_noun}"
    return de, en


TIMES = [("heute", "today"), ("jetzt", "now"), ("am Morgen", "in the morning"), ("am Abend", "in the evening"),
         ("am Nachmittag", "in the afternoon"), ("am Sonntag", "on Sunday"), ("am Montag", "on Monday"),
         ("am Samstag", "on Saturday"), ("jeden Tag", "every day"), ("im Sommer", "in summer"),
         ("im Winter", "in winter")]
FREQ = [("oft", "often"), ("immer", "always"), ("manchmal", "sometimes"), ("selten", "rarely")]
PRONOUNS = [("ich", "I", 0), ("du", "you", 1), ("er", "he", 2), ("sie", "she", 2), ("wir", "we", 3)]
NAMES = ["Anna", "Paul", "Lena", "Max", "Sophie", "Jonas", "Marie", "Felix", "Emma", "Leon"]


def pick_noun(rng: random.Random, tags: set[str], exclude: dict | None = None) -> dict:
    pool = [n for n in NOUNS if n["tags"] & tags and n is not exclude]
    return rng.choice(pool)


def subject(rng: random.Random, person_only: bool) -> dict:
    """A subject: German nominative, English, person index (0 ich, 1 du, 2 3sg, 3 wir/plural), noun or None."""
    r = rng.random()
    if r < 0.2:
        de, en, p = rng.choice(PRONOUNS)
        return dict(de=de, en=en, p=p, noun=None, pron=True)
    if r < 0.3:
        name = rng.choice(NAMES)
        return dict(de=name, en=name, p=2, noun=None, pron=False)
    noun = pick_noun(rng, {"person"} if person_only else {"person", "animal"})
    adj = rng.choice(noun["adj"]) if rng.random() < 0.5 else None
    if r < 0.38:  # two coordinated subjects
        other = pick_noun(rng, {"person"} if person_only else {"person", "animal"}, exclude=noun)
        de = f"{np_de(noun, 'nom', 'def', adj)} und {np_de(other, 'nom', 'def', None)}"
        en = f"{np_en(noun, 'def', adj)} and {np_en(other, 'def', None)}"
        return dict(de=de, en=en, p=3, noun=noun, pron=False)
    det = "def" if rng.random() < 0.8 else "indef"
    return dict(de=np_de(noun, "nom", det, adj), en=np_en(noun, det, adj), p=2, noun=noun, pron=False)


def de_sentence(first: str, rest: list[str], end: str = ".") -> str:
    words = [cap(first)] + [w for w in rest if w]
    return " ".join(words) + end


def en_sentence(words: list[str], end: str = ".") -> str:
    text = " ".join(w for w in words if w)
    return cap(text) + end


def en_verb(verb_en: tuple[str, str], p: int) -> str:
    return verb_en[1] if p == 2 else verb_en[0]


def do_not(p: int) -> str:
    return "does not" if p == 2 else "do not"


def translation_pair(rng: random.Random) -> tuple[str, str]:
    kind = rng.choices(["trans", "intrans", "pred", "question"], weights=[50, 25, 13, 12])[0]
    if kind == "pred":
        if rng.random() < 0.35:  # a thing, food or drink
            noun = pick_noun(rng, {"thing", "food", "drink"})
            subj = dict(de=np_de(noun, "nom", "def", None), en=np_en(noun, "def", None), p=2, noun=noun)
        else:
            subj = subject(rng, person_only=False)
        be_de, be_en = SEIN[subj["p"]], BE_EN[subj["p"]]
        if rng.random() < 0.5:
            place_de, place_en = place_phrase(rng)
            return de_sentence(subj["de"], [be_de, place_de]), en_sentence([subj["en"], be_en, place_en])
        if subj["noun"] is not None:
            adjs = [a for a in subj["noun"]["adj"]]
        else:
            adjs = ["müd", "hungrig", "freundlich", "jung", "alt", "klein", "groß"]
        adj = rng.choice(adjs)
        very = rng.random() < 0.3
        de_adj, en_adj = ADJ[adj]
        return (de_sentence(subj["de"], [be_de, "sehr" if very else "", de_adj]),
                en_sentence([subj["en"], be_en, "very" if very else "", en_adj]))

    if kind in ("trans", "question") and rng.random() < 0.85 or kind == "trans":
        verb = rng.choice(VERBS_TR)
        subj = subject(rng, person_only=verb.get("person", False) or bool(verb["obj"] & {"readable"}))
        obj_noun = pick_noun(rng, verb["obj"], exclude=subj["noun"])
        count = "count" in obj_noun["tags"] or obj_noun["tags"] & {"person", "animal", "thing"}
        det = "def" if (not count or rng.random() < 0.65) else "indef"
        obj_adj = rng.choice(obj_noun["adj"]) if rng.random() < 0.4 else None
        v_de, v_en = verb["de"][subj["p"]], verb["en"]
        if kind == "question":
            obj_de, obj_en = np_de(obj_noun, "acc", det, obj_adj), np_en(obj_noun, det, obj_adj)
            place_de, place_en = place_phrase(rng) if rng.random() < 0.4 else ("", "")
            aux = "Does" if subj["p"] == 2 else "Do"
            return (de_sentence(v_de, [subj["de"], obj_de, place_de], "?"),
                    en_sentence([aux, subj["en"], v_en[0], obj_en, place_en], "?"))
        neg = rng.random() < 0.12
        if neg:
            det2 = "kein" if det == "indef" else "def"
            obj_de, obj_en = np_de(obj_noun, "acc", det2, obj_adj), np_en(obj_noun, det2, obj_adj)
            time_de, time_en = rng.choice(TIMES) if rng.random() < 0.3 else ("", "")
            tail = ["nicht"] if det2 == "def" else []
            return (de_sentence(subj["de"], [v_de, time_de, obj_de] + tail),
                    en_sentence([subj["en"], do_not(subj["p"]), v_en[0], obj_en, time_en]))
        obj_de, obj_en = np_de(obj_noun, "acc", det, obj_adj), np_en(obj_noun, det, obj_adj)
        place_de, place_en = place_phrase(rng) if rng.random() < 0.55 else ("", "")
        r = rng.random()
        if verb.get("notime") and r < 0.4:
            r = 1.0
        if r < 0.2:  # fronted time, verb second, subject after the verb
            time_de, time_en = rng.choice(TIMES)
            return (de_sentence(time_de, [v_de, subj["de"], obj_de, place_de]),
                    en_sentence([cap(time_en), subj["en"], en_verb(v_en, subj["p"]), obj_en, place_en]))
        if r < 0.4:
            time_de, time_en = rng.choice(TIMES)
            return (de_sentence(subj["de"], [v_de, time_de, obj_de, place_de]),
                    en_sentence([subj["en"], en_verb(v_en, subj["p"]), obj_en, place_en, time_en]))
        if r < 0.55 and not verb.get("nofreq"):
            f_de, f_en = rng.choice(FREQ)
            return (de_sentence(subj["de"], [v_de, f_de, obj_de, place_de]),
                    en_sentence([subj["en"], f_en, en_verb(v_en, subj["p"]), obj_en, place_en]))
        return (de_sentence(subj["de"], [v_de, obj_de, place_de]),
                en_sentence([subj["en"], en_verb(v_en, subj["p"]), obj_en, place_en]))

    # intransitive (or an intransitive question)
    verb = rng.choice(VERBS_IN)
    subj = subject(rng, person_only=verb.get("person", False))
    v_de, v_en = verb["de"][subj["p"]], verb["en"]
    place_de, place_en = place_phrase(rng)
    if kind == "question":
        aux = "Does" if subj["p"] == 2 else "Do"
        return (de_sentence(v_de, [subj["de"], place_de], "?"),
                en_sentence([aux, subj["en"], v_en[0], place_en], "?"))
    r = rng.random()
    if r < 0.1:
        return (de_sentence(subj["de"], [v_de, "nicht", place_de]),
                en_sentence([subj["en"], do_not(subj["p"]), v_en[0], place_en]))
    if r < 0.35:
        time_de, time_en = rng.choice(TIMES)
        return (de_sentence(time_de, [v_de, subj["de"], place_de]),
                en_sentence([cap(time_en), subj["en"], en_verb(v_en, subj["p"]), place_en]))
    if r < 0.55:
        time_de, time_en = rng.choice(TIMES)
        return (de_sentence(subj["de"], [v_de, time_de, place_de]),
                en_sentence([subj["en"], en_verb(v_en, subj["p"]), place_en, time_en]))
    if r < 0.7:
        f_de, f_en = rng.choice(FREQ)
        return (de_sentence(subj["de"], [v_de, f_de, place_de]),
                en_sentence([subj["en"], f_en, en_verb(v_en, subj["p"]), place_en]))
    return de_sentence(subj["de"], [v_de, place_de]), en_sentence([subj["en"], en_verb(v_en, subj["p"]), place_en])


def make_translation(rng: random.Random, n_test: int, n_train: int) -> tuple[list[dict], list[dict]]:
    seen: set[str] = set()
    pairs: list[tuple[str, str]] = []
    while len(pairs) < n_test + n_train:
        de, en = translation_pair(rng)
        if de in seen:
            continue
        seen.add(de)
        pairs.append((de, en))
    test = [{"id": f"tr-{i + 1:04d}", "de": de, "en": en} for i, (de, en) in enumerate(pairs[:n_test])]
    train = [{"id": f"tr-train-{i + 1:04d}", "de": de, "en": en} for i, (de, en) in enumerate(pairs[n_test:])]
    return test, train


# ----------------------------------------------------------------------------------------------------------
# Shared pools of invented names and places.
# ----------------------------------------------------------------------------------------------------------

FIRST = ["Anna", "Ben", "Clara", "David", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jakob", "Kemal", "Laura",
         "Marco", "Nina", "Omar", "Paula", "Rosa", "Samuel", "Tara", "Victor", "Yusuf", "Zoe", "Chloé", "José",
         "Maya", "Liam", "Priya", "Tomás", "Hannah", "Erik", "Amara", "Lucas"]
SHE = {"Anna", "Clara", "Elena", "Grace", "Ines", "Laura", "Nina", "Paula", "Rosa", "Tara", "Zoe", "Chloé", "Maya",
       "Priya", "Hannah", "Amara"}
LAST = ["Becker", "Brooks", "Carter", "Diaz", "Evans", "Fischer", "Garcia", "Hughes", "Ito", "Jensen", "Klein",
        "Lopez", "Morgan", "Novak", "Okafor", "Patel", "Quinn", "Reyes", "Schmidt", "Turner", "Vogel", "Walsh",
        "Young", "Zimmermann", "Moreau", "Nakamura", "Costa", "Lindqvist", "Adeyemi", "Kowalski"]
TOWNS = ["Ashford", "Brookside", "Cedar Falls", "Dunmore", "Elmwood", "Fairhaven", "Greenfield", "Hollybrook",
         "Ivydale", "Kingsmere", "Lakeside", "Millbrook", "Northgate", "Oakridge", "Pinehurst", "Redwater",
         "Stonebridge", "Thornbury", "Westbrook", "Willowdale", "Marlow Bay", "Eastcombe", "Harrowfield",
         "Silverton"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]


def person(rng: random.Random) -> tuple[str, str, str]:
    first = rng.choice(FIRST)
    return f"{first} {rng.choice(LAST)}", first, ("she" if first in SHE else "he")


def ordinal(n: int) -> str:
    return {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth", 6: "sixth", 7: "seventh",
            8: "eighth"}[n]


# ----------------------------------------------------------------------------------------------------------
# 2. Summarization: short news items from five families.
# ----------------------------------------------------------------------------------------------------------

def compose(rng: random.Random, lead: str, required: list[str], optional: list[str], lo: int = 4,
            hi: int = 7) -> str:
    n_total = rng.randint(max(lo, 1 + len(required)), min(hi, 1 + len(required) + len(optional)))
    extra = rng.sample(optional, n_total - 1 - len(required))
    body = required + extra
    rng.shuffle(body)
    return " ".join([lead] + body)


def news_sport(rng: random.Random) -> tuple[str, str]:
    t1, t2, t3 = rng.sample(TOWNS, 3)
    a1, a2, a3 = rng.sample(["Hawks", "Owls", "Lions", "Foxes", "Bears", "Wolves", "Eagles", "Falcons", "Rovers",
                             "Rangers", "Otters", "Badgers"], 3)
    win, lose, nxt = f"{t1} {a1}", f"{t2} {a2}", f"{t3} {a3}"
    football = rng.random() < 0.6
    if football:
        a = rng.randint(1, 5)
        b = rng.randint(0, a - 1)
        n = rng.randint(2, min(3, a)) if a >= 2 else 1
        unit = "goals" if n > 1 else "goal"
        scored = f"{NUM_WORDS[n]} {unit}"
        league = rng.choice(["regional league", "county league", "second division"])
    else:
        a = rng.randint(70, 110)
        b = a - rng.randint(1, 20)
        n = rng.randint(18, 38)
        scored = f"{n} points"
        league = rng.choice(["city basketball league", "regional basketball league"])
    day = rng.choice(WEEKDAYS)
    venue = rng.choice([f"{t1} Stadium", "Oak Park", "the Riverside Ground", f"the {t1} Arena", "Victoria Park"])
    star, star_first, star_pron = person(rng)
    coach, _, _ = person(rng)
    att = rng.randint(8, 95) * 100
    pos = rng.randint(1, 6)
    pts = rng.randint(12, 40)
    score = f"{a}-{b}"
    lead = rng.choice([
        f"The {win} beat the {lose} {score} on {day} at {venue}.",
        f"The {win} won {score} against the {lose} at {venue} on {day}.",
        f"On {day}, the {win} defeated the {lose} {score} at {venue}.",
    ])
    s_star = rng.choice([
        f"{star} scored {scored} for the {a1}.",
        f"{star} was the player of the match with {scored}.",
        f"The {a1} got {scored} from {star}.",
    ])
    s_table = rng.choice([
        f"The win moves the {a1} to {ordinal(pos)} place in the {league} with {pts} points.",
        f"The {a1} are now {ordinal(pos)} in the {league} with {pts} points.",
    ])
    optional = [
        rng.choice([f"About {num(att)} fans watched the game.", f"The game was watched by a crowd of {num(att)}."]),
        rng.choice([f"Coach {coach} said the team had worked hard all week.",
                    f"\"We deserved this win,\" said coach {coach}.",
                    f"Coach {coach} praised the defence after the match."]),
        f"The {a1} play the {nxt} next {rng.choice(WEEKDAYS)}.",
        rng.choice([f"The {a2} had won their previous {rng.randint(2, 5)} games.",
                    f"It was the {a2}' {ordinal(rng.randint(2, 4))} defeat of the season.",
                    "Rain made the ground slippery in the second half." if football else
                    "The lead changed hands several times in the last quarter."]),
    ]
    summary = rng.choice([
        f"{star} scored {scored} as the {win} beat the {lose} {score} to reach {ordinal(pos)} place.",
        f"The {win} moved to {ordinal(pos)} in the {league} after a {score} win over the {lose}.",
        f"With {scored} from {star}, the {win} beat the {lose} {score} and are now {ordinal(pos)} in the {league}.",
    ])
    return compose(rng, lead, [s_star, s_table], optional), summary


SECTORS = [("Foods", "bakery chain", "bread and pastries", "demand for whole-grain bread"),
           ("Logistics", "delivery company", "parcel deliveries", "more online shopping"),
           ("Software", "software firm", "accounting software", "new customers in schools"),
           ("Motors", "bicycle maker", "electric bicycles", "strong sales of electric bicycles"),
           ("Textiles", "clothing maker", "outdoor jackets", "a cold winter"),
           ("Energy", "solar company", "solar panels", "new contracts with farms"),
           ("Furniture", "furniture maker", "wooden tables and chairs", "orders from hotels"),
           ("Toys", "toy company", "wooden toys", "a popular puzzle game")]
BAD_REASONS = ["higher energy prices", "a long strike at its main factory", "weak demand abroad",
               "rising costs for raw materials", "a fire at one of its warehouses"]


def news_company(rng: random.Random) -> tuple[str, str]:
    town, town2 = rng.sample(TOWNS, 2)
    sector, desc, product, good = rng.choice(SECTORS)
    name = f"{rng.choice(['Bluebird', 'Northwind', 'Silverline', 'Redstone', 'Greenleaf', 'Brightpath', 'Kestrel', 'Harbor', 'Summit', 'Meadow', 'Copperfield', 'Lark'])} {sector}"
    rev = rng.randint(3, 90) + rng.choice([0, 0.5, 0.2, 0.8])
    rev_s = f"{rev:g}"
    p = rng.randint(2, 25)
    up = rng.random() < 0.65
    year = rng.randint(2019, 2024)
    ceo, _, _ = person(rng)
    hires = rng.randint(2, 30) * 5
    staff = rng.randint(8, 120) * 10
    share = rng.randint(1, 9)
    lead = rng.choice([
        f"{name}, a {desc} based in {town}, reported sales of {rev_s} million euros for {year}.",
        f"The {town} {desc} {name} said on {rng.choice(WEEKDAYS)} that its sales reached {rev_s} million euros in {year}.",
    ])
    change = (f"That is {p} percent more than the year before." if up
              else f"That is {p} percent less than the year before.")
    if up:
        why = rng.choice([f"Chief executive {ceo} said the growth came from {good}.",
                          f"According to chief executive {ceo}, {good} drove the increase."])
        plan = rng.choice([f"The company plans to hire {hires} new workers next year.",
                           f"It wants to add {hires} jobs and open a new site in {town2}."])
        summary = rng.choice([
            f"{town}-based {name} grew its sales by {p} percent to {rev_s} million euros and plans to hire {hires} workers.",
            f"Thanks to {good}, {name} increased its {year} sales by {p} percent to {rev_s} million euros.",
            f"Sales at {name} rose {p} percent to {rev_s} million euros in {year}, and the firm will add {hires} jobs.",
        ])
        stock = f"Its shares rose {share} percent after the announcement."
    else:
        bad = rng.choice(BAD_REASONS)
        why = rng.choice([f"Chief executive {ceo} blamed {bad}.",
                          f"According to chief executive {ceo}, the fall was caused by {bad}."])
        plan = rng.choice(["The company will not hire new staff this year.",
                           f"It plans to close its office in {town2} to save money."])
        summary = rng.choice([
            f"Sales at {town}-based {name} fell {p} percent to {rev_s} million euros in {year} because of {bad}.",
            f"{name} blamed {bad} for a {p} percent drop in {year} sales to {rev_s} million euros.",
        ])
        stock = f"Its shares fell {share} percent after the announcement."
    optional = [plan, stock, f"The firm employs about {num(staff)} people.",
                f"Most of its money comes from {product}.",
                rng.choice([f"The results will be discussed at a meeting in {MONTHS[rng.randint(0, 11)]}.",
                            f"The company was founded in {rng.randint(1950, 2015)}."])]
    if "hire" in summary or "jobs" in summary:
        optional.remove(plan)
        return compose(rng, lead, [change, why, plan], optional), summary
    return compose(rng, lead, [change, why], optional), summary


FESTIVALS = ["apple festival", "music festival", "book fair", "flower show", "food market", "summer fair",
             "kite festival", "cheese market"]
CAUSES = ["the town library", "the local primary school", "the children's hospital", "the animal shelter",
          "the new playground", "the volunteer fire brigade"]


def news_festival(rng: random.Random) -> tuple[str, str]:
    town = rng.choice(TOWNS)
    fest = rng.choice(FESTIVALS)
    day = rng.choice(["Saturday", "Sunday"])
    visitors = rng.randint(8, 150) * 100
    money = rng.randint(15, 400) * 100
    cause = rng.choice(CAUSES)
    mayor, _, _ = person(rng)
    stalls = rng.randint(12, 90)
    edition = rng.randint(2, 40)
    lead = rng.choice([
        f"The town of {town} held its {fest} on {day}.",
        f"{town} celebrated its {fest} on {day} in the market square.",
        f"Thousands of people came to {town} on {day} for the {fest}." if visitors >= 2000
        else f"Hundreds of people came to {town} on {day} for the {fest}.",
    ])
    s_vis = rng.choice([f"Organisers counted {num(visitors)} visitors.",
                        f"About {num(visitors)} visitors came over the day.",
                        f"More than {num(visitors)} people visited the stalls."])
    s_money = rng.choice([f"The event raised {num(money)} euros for {cause}.",
                          f"All {num(money)} euros raised will go to {cause}."])
    optional = [
        f"Mayor {mayor} opened the event at {rng.randint(9, 11)} a.m.",
        f"There were {stalls} stalls and {rng.randint(2, 9)} live bands.",
        rng.choice(["The weather stayed dry and sunny all day.", "A short shower in the afternoon did not stop the crowds.",
                    "It was the warmest day of the year so far."]),
        f"The event has been held every year for {edition} years." if edition > 3 else "The event was first held in 2019.",
        rng.choice(["Local farmers sold fruit, honey and bread.", "Children could paint their own kites.",
                    "A choir from the primary school sang in the afternoon."]),
    ]
    summary = rng.choice([
        f"{town}'s {fest} drew {num(visitors)} visitors and raised {num(money)} euros for {cause}.",
        f"About {num(visitors)} people attended the {fest} in {town}, which raised {num(money)} euros for {cause}.",
        f"The {fest} in {town} raised {num(money)} euros for {cause} as {num(visitors)} visitors came.",
    ])
    return compose(rng, lead, [s_vis, s_money], optional), summary


PROJECTS = [("bridge", "over the river", "cars"), ("library", "in the town centre", "visitors"),
            ("swimming pool", "next to the park", "swimmers"), ("cycle path", "along the canal", "cyclists"),
            ("primary school", "on Station Road", "pupils"), ("bus station", "near the market", "passengers")]


def news_opening(rng: random.Random) -> tuple[str, str]:
    town = rng.choice(TOWNS)
    proj, where, users_w = rng.choice(PROJECTS)
    cost = f"{rng.randint(1, 30) + rng.choice([0, 0.5, 0.2]):g}"
    years = rng.randint(1, 4)
    users = rng.randint(3, 80) * 100
    official, _, _ = person(rng)
    day = rng.choice(WEEKDAYS)
    lead = rng.choice([f"A new {proj} {where} opened in {town} on {day}.",
                       f"{town} opened its new {proj} {where} on {day}.",
                       f"After {NUM_WORDS[years]} years of work, the new {proj} in {town} opened on {day}."])
    s_cost = rng.choice([f"The project cost {cost} million euros.",
                         f"Building it cost {cost} million euros, paid by the town and the region."])
    s_users = rng.choice([f"Officials expect about {num(users)} {users_w} a day.",
                          f"About {num(users)} {users_w} are expected to use it every day."])
    optional = [
        f"Work took {NUM_WORDS[years]} {'year' if years == 1 else 'years'}, {rng.choice(['longer than planned', 'as planned', 'a little less than planned'])}.",
        rng.choice([f"Town councillor {official} cut the ribbon.", f"Engineer {official} led the building work."]),
        rng.choice(["Some residents had complained about the noise during construction.",
                    "The old building on the site was more than a hundred years old.",
                    "A small café will open inside later this year."]),
        "The opening ceremony ended with music from the town band.",
    ]
    summary = rng.choice([
        f"{town} has opened a {cost} million euro {proj} that should serve about {num(users)} {users_w} a day.",
        f"The new {proj} in {town} cost {cost} million euros and is expected to be used by {num(users)} {users_w} daily.",
    ])
    return compose(rng, lead, [s_cost, s_users], optional), summary


def news_weather(rng: random.Random) -> tuple[str, str]:
    town = rng.choice(TOWNS)
    event, amount = rng.choice([("Heavy rain", f"{rng.randint(40, 120)} millimetres of rain"),
                                ("A storm", f"wind gusts of up to {rng.randint(80, 140)} kilometres per hour"),
                                ("Heavy snow", f"{rng.randint(20, 60)} centimetres of snow")])
    day_i = rng.randint(0, 4)
    day = WEEKDAYS[day_i]
    until = WEEKDAYS[day_i + rng.randint(1, 2)]
    homes = rng.randint(2, 90) * 50
    rescued = rng.randint(3, 40)
    chief, _, _ = person(rng)
    lead = rng.choice([f"{event} hit {town} on {day} night.", f"{event} caused problems in {town} on {day}.",
                       f"Parts of {town} were hit by {event.lower()} on {day}."])
    s_power = rng.choice([f"About {num(homes)} homes lost power.", f"Power was cut to around {num(homes)} homes."])
    s_school = rng.choice([f"Schools will stay closed until {until}.", f"All schools in the area are closed until {until}."])
    optional = [
        f"The weather service measured {amount}.",
        rng.choice([f"Firefighters helped {rescued} people leave their homes.",
                    f"Emergency crews rescued {rescued} people from cars stuck on the roads."]),
        rng.choice([f"Fire chief {chief} asked people to stay at home.", f"Mayor {chief} thanked the volunteers."]),
        rng.choice(["Several roads were closed because of fallen trees.", "Trains to the city were cancelled.",
                    "No one was seriously hurt."]),
    ]
    summary = rng.choice([
        f"{event} in {town} left {num(homes)} homes without power and closed schools until {until}.",
        f"About {num(homes)} homes in {town} lost power after {event.lower()}, and schools are shut until {until}.",
    ])
    return compose(rng, lead, [s_power, s_school], optional), summary


def make_summarization(rng: random.Random, n_test: int, n_train: int) -> tuple[list[dict], list[dict]]:
    families = [news_sport, news_company, news_festival, news_opening, news_weather]
    seen: set[str] = set()
    rows: list[tuple[str, str]] = []
    while len(rows) < n_test + n_train:
        doc, summ = rng.choice(families)(rng)
        if doc in seen:
            continue
        seen.add(doc)
        rows.append((doc, summ))
    test = [{"id": f"sum-{i + 1:04d}", "document": d, "summary": s} for i, (d, s) in enumerate(rows[:n_test])]
    train = [{"id": f"sum-train-{i + 1:04d}", "document": d, "summary": s} for i, (d, s) in enumerate(rows[n_test:])]
    return test, train


# ----------------------------------------------------------------------------------------------------------
# 3. Extractive QA: short passages, each with several questions; every answer is a span of the passage.
# ----------------------------------------------------------------------------------------------------------

JOBS = ["librarian", "baker", "nurse", "carpenter", "teacher", "gardener", "photographer", "bus driver", "chemist",
        "translator", "architect", "pilot"]
SUBJECTS = ["history", "biology", "music", "engineering", "French", "mathematics", "art", "economics"]
CITIES = ["Lyon", "Porto", "Leipzig", "Bristol", "Gdańsk", "Bergen", "Bologna", "Zürich"]
HOBBIES = [("paints", "paint"), ("volunteers", "volunteer"), ("plays chess", "play chess"),
           ("sings in a choir", "sing in a choir"), ("teaches children to swim", "teach children to swim")]
SPOTS = ["museum", "community centre", "old church", "sports hall", "library", "harbour", "youth club"]
LANDMARKS = ["river", "train station", "market square", "castle", "old mill", "lighthouse"]
PETS = ["cat", "dog", "rabbit", "parrot", "tortoise"]
PET_NAMES = ["Biscuit", "Pepper", "Luna", "Otto", "Mango", "Socks", "Ziggy", "Nala", "Bruno", "Pip"]


def qa_profile(rng: random.Random) -> tuple[str, list[tuple[str, list[str]]]]:
    full, first, pron = person(rng)
    poss = "her" if pron == "she" else "his"
    job, town, city, subj = rng.choice(JOBS), rng.choice(TOWNS), rng.choice(CITIES), rng.choice(SUBJECTS)
    year = rng.randint(1995, 2022)
    hobby3, hobby = rng.choice(HOBBIES)
    spot, landmark = rng.choice(SPOTS), rng.choice(LANDMARKS)
    n_pets = rng.randint(1, 4)
    pet = rng.choice(PETS)
    names = rng.sample(PET_NAMES, min(n_pets, 2))
    day = rng.choice(["Saturday", "Sunday", "weekends", "Friday evenings"])
    when = f"every {day.rstrip('s')}" if day in ("Saturday", "Sunday") else f"on {day}"
    sents = [
        f"{full} is {a_an(job)} {job} who lives in {town}.",
        f"{cap(pron)} moved there in {year} after studying {subj} in {city}.",
        f"{cap(when)}, {pron} {hobby3} at the {spot} near the {landmark}.",
    ]
    qs = [
        (rng.choice([f"What is {first}'s job?", f"What does {full} do for a living?"]), [f"{a_an(job)} {job}", job]),
        (rng.choice([f"Where does {full} live?", f"In which town does {first} live?"]), [town]),
        (f"When did {first} move to {town}?", [f"in {year}", str(year)]),
        (f"What did {first} study?", [subj]),
        (f"Where did {first} study {subj}?", [city]),
        (f"Where does {first} {hobby} {when}?", [f"the {spot} near the {landmark}", f"the {spot}", spot]),
    ]
    if rng.random() < 0.7:
        if n_pets == 1:
            sents.append(f"{cap(pron)} has one {pet} called {names[0]}.")
            qs.append((f"What is the name of {first}'s {pet}?", [names[0]]))
            qs.append((f"What kind of pet does {first} have?", [pet]))
        else:
            pets = pet + "s"
            sents.append(f"{cap(pron)} has {NUM_WORDS[n_pets]} {pets}, and {poss} favourite is called {names[0]}.")
            qs.append((f"How many {pets} does {first} have?", [NUM_WORDS[n_pets]]))
            qs.append((f"What is {first}'s favourite {pet} called?", [names[0]]))
    return " ".join(sents), qs


BUILDINGS = ["town hall", "railway station", "concert hall", "observatory", "lighthouse", "museum", "water tower"]
FEATURES = ["clock", "garden", "small tower", "glass dome", "weather vane", "flag"]
MATERIALS = ["red brick", "grey stone", "wood and glass", "white marble", "yellow sandstone"]


def qa_building(rng: random.Random) -> tuple[str, list[tuple[str, list[str]]]]:
    town = rng.choice(TOWNS)
    b = rng.choice(BUILDINGS)
    year = rng.randint(1820, 1990)
    arch, _, _ = person(rng)
    arch_last = arch.split(" ", 1)[1]
    floors = rng.randint(2, 12)
    feat, mat = rng.choice(FEATURES), rng.choice(MATERIALS)
    visitors = rng.randint(5, 300) * 100
    fee = rng.randint(2, 15)
    sents = [
        f"The {b} in {town} was built in {year} by the architect {arch}.",
        f"It is made of {mat} and has {floors} floors, with {a_an(feat)} {feat} on the roof.",
        f"Every year about {num(visitors)} people visit it.",
    ]
    qs = [
        (f"When was the {b} in {town} built?", [f"in {year}", str(year)]),
        (rng.choice([f"Who was the architect of the {b}?", f"Who built the {b} in {town}?"]), [arch, arch_last]),
        (f"How many floors does the {b} have?", [str(floors)]),
        (f"What is on the roof of the {b}?", [f"{a_an(feat)} {feat}", feat]),
        (f"What is the {b} made of?", [mat]),
        (f"How many people visit the {b} each year?", [f"about {num(visitors)} people", num(visitors)]),
    ]
    if rng.random() < 0.6:
        sents.append(f"Entry costs {fee} euros, but it is free on the first {rng.choice(WEEKDAYS)} of each month.")
        qs.append((f"How much does entry to the {b} cost?", [f"{fee} euros"]))
    return " ".join(sents), qs


EVENTS = ["jazz festival", "film festival", "chess tournament", "marathon", "science fair", "flower show"]
STAGES = [("main square", "square"), ("old harbour", "harbour"), ("city park", "park"),
          ("university hall", "hall"), ("riverside meadow", "meadow")]


def qa_event(rng: random.Random) -> tuple[str, list[tuple[str, list[str]]]]:
    town = rng.choice(TOWNS)
    ev = rng.choice(EVENTS)
    month = rng.choice(MONTHS)
    d = rng.randint(1, 28)
    days = rng.randint(2, 9)
    price = rng.randint(5, 45)
    age = rng.choice([6, 10, 12, 14, 16])
    stage, stage_short = rng.choice(STAGES)
    org, _, _ = person(rng)
    n_acts = rng.randint(10, 120)
    sents = [
        f"The {town} {ev} starts on {d} {month} and lasts {NUM_WORDS[days] if days <= 12 else days} days.",
        f"Tickets cost {price} euros for adults and are free for children under {age}.",
        f"Most events take place in the {stage}, and the festival is organised by {org}.",
    ]
    qs = [
        (f"When does the {town} {ev} start?", [f"on {d} {month}", f"{d} {month}"]),
        (f"How long does the {ev} last?", [f"{NUM_WORDS[days]} days"]),
        ("How much does an adult ticket cost?", [f"{price} euros"]),
        (f"Who can go to the {ev} for free?", [f"children under {age}"]),
        (f"Where do most events of the {ev} take place?", [f"the {stage}", stage]),
        (f"Who organises the {town} {ev}?", [org]),
    ]
    if rng.random() < 0.5:
        sents.append(f"This year there are {n_acts} {'films' if ev == 'film festival' else 'participants'} on the programme.")
        qs.append((f"How many {'films' if ev == 'film festival' else 'participants'} are on the programme this year?",
                   [str(n_acts)]))
    return " ".join(sents), qs


TRANSPORT = [("took the train", ["the train", "train"]), ("took the ferry", ["the ferry", "ferry"]),
             ("took the night bus", ["the night bus", "night bus"]), ("rode a bicycle", ["a bicycle", "bicycle"])]


def qa_trip(rng: random.Random) -> tuple[str, list[tuple[str, list[str]]]]:
    full, first, pron = person(rng)
    a, b = rng.sample(TOWNS, 2)
    verb, mode_answers = rng.choice(TRANSPORT)
    hours = rng.randint(2, 11)
    reason = rng.choice(["visit an old friend", "see a football match", "start a new job", "attend a wedding",
                         "buy a piano", "sell paintings at the market"])
    item = rng.choice(["a green suitcase", "a heavy backpack", "a box of apples", "an umbrella", "a small guitar"])
    day = rng.choice(WEEKDAYS)
    sents = [
        f"On {day}, {full} {verb} from {a} to {b}.",
        f"The journey took {hours} hours.",
        f"{cap(pron)} went there to {reason} and carried only {item}.",
    ]
    qs = [
        (f"How did {first} travel to {b}?", mode_answers),
        (f"Where did {first}'s journey start?", [a]),
        (f"Where did {first} travel to on {day}?", [b]),
        ("How long did the journey take?", [f"{hours} hours"]),
        (f"Why did {first} go to {b}?", [f"to {reason}", reason]),
        (f"What did {first} carry?", [item, item.split(" ", 1)[1]]),
        (f"On which day did {first} travel?", [day, f"On {day}"]),
    ]
    return " ".join(sents), qs


def make_qa(rng: random.Random, n_test: int, n_train: int) -> tuple[list[dict], list[dict]]:
    families = [qa_profile, qa_building, qa_event, qa_trip]
    seen: set[str] = set()
    test: list[tuple[str, str, list[str]]] = []
    train: list[tuple[str, str, list[str]]] = []
    while len(test) < n_test or len(train) < n_train:
        ctx, qs = rng.choice(families)(rng)
        if ctx in seen:
            continue
        seen.add(ctx)
        qs = [(q, [a for i, a in enumerate(ans) if a not in ans[:i]]) for q, ans in qs]
        for q, ans in qs:
            for a in ans:
                assert a in ctx, (a, ctx)
        if len(test) < n_test:
            q, ans = rng.choice(qs)
            test.append((ctx, q, ans))
        else:
            for q, ans in rng.sample(qs, min(len(qs), 2)):
                if len(train) < n_train:
                    train.append((ctx, q, ans))
    mk = lambda prefix, rows: [{"id": f"{prefix}-{i + 1:04d}", "context": c, "question": q, "answers": a}
                               for i, (c, q, a) in enumerate(rows)]
    return mk("qa", test), mk("qa-train", train)


# ----------------------------------------------------------------------------------------------------------
# 4. Classification: short reviews of products and films.
# ----------------------------------------------------------------------------------------------------------

PRODUCTS = ["the headphones", "this blender", "the backpack", "this phone case", "the desk lamp", "this kettle",
            "the keyboard", "these running shoes", "the tent", "this coffee maker", "the vacuum cleaner",
            "this jacket", "the umbrella", "this toaster"]
FILMS = ["the film", "this movie", "the sequel", "this comedy", "the documentary", "this thriller",
         "the animated film", "this drama"]
P_PROD = ["works perfectly", "is worth every penny", "exceeded my expectations", "is sturdy and well made",
          "does its job brilliantly", "arrived early and works great", "is the best purchase I made this year",
          "feels solid and looks lovely", "is easy to use and very reliable", "made my mornings so much better"]
N_PROD = ["stopped working after a week", "feels cheap and flimsy", "is a waste of money", "broke on the first day",
          "is noisy and hard to clean", "fell apart after two uses", "is the worst thing I have bought",
          "arrived damaged and support never answered", "is badly made and overpriced", "disappointed me completely"]
U_PROD = ["arrived on Tuesday", "comes in a grey box", "is about the size of a shoebox", "does what it should, nothing more",
          "is okay for the price", "comes with a two-year warranty", "is available in three colours",
          "weighs about one kilo", "is similar to my old one", "was delivered in two parts"]
P_FILM = ["is a joy from start to finish", "has superb acting", "made me laugh the whole time",
          "tells a beautiful story", "is gripping until the last scene", "is a masterpiece",
          "has wonderful music and a clever plot", "is the best film I have seen in years"]
N_FILM = ["is boring and far too long", "has a plot that makes no sense", "wasted two hours of my life",
          "has jokes that fall completely flat", "is a dull mess", "made me walk out halfway",
          "has terrible dialogue", "is a huge disappointment"]
MINOR = {"negative": (["the box was a bit dented", "the manual is confusing", "delivery took a while",
                       "the colour is a bit dull"],
                      ["the start is slow", "the cinema was too cold", "the poster is misleading"]),
         "positive": (["the design is nice", "delivery was fast", "the price seemed fair", "the colour is lovely"],
                      ["the actors try hard", "the music is nice", "the first scene is promising"])}
U_FILM = ["runs for about two hours", "is based on a novel", "was filmed in Spain", "is in English with subtitles",
          "is an average film", "is showing at the local cinema", "has a cast of mostly new actors",
          "came out last spring"]
# Phrases that only test reviews use (with probability HELD_OUT_P), so a model has to generalise a little.
HELD_OUT = {
    ("positive", False): ["is a delight to use every day", "works like a charm", "is great quality for the money",
                          "keeps getting better the more I use it"],
    ("negative", False): ["gave up after ten days", "smells of plastic and leaks", "is a complete letdown",
                          "cracked the first time I dropped it"],
    ("neutral", False): ["was shipped from a warehouse in Spain", "has a plain white design", "uses two AA batteries",
                         "is the same model my sister has"],
    ("positive", True): ["is funny, warm and clever", "kept me smiling for days", "deserves every award it gets"],
    ("negative", True): ["drags on with no real ending", "is loud, silly and empty", "put me to sleep twice"],
    ("neutral", True): ["was directed by a first-time director", "is rated for ages twelve and up",
                        "has a runtime of ninety minutes"],
}
HELD_OUT_P = 0.4
P_OPEN = ["Honestly,", "Five stars:", "Wow,", "Highly recommended:", "", "", ""]
N_OPEN = ["Sadly,", "One star:", "Avoid it:", "Unfortunately,", "", "", ""]
U_OPEN = ["For the record,", "Just so you know,", "Note:", "", "", "", ""]
P_TAIL = ["I love it.", "I would buy it again.", "Great value.", "Really happy with it.", "Recommended!"]
N_TAIL = ["I want a refund.", "Never again.", "Do not buy it.", "Very annoying.", "What a letdown."]
U_TAIL = ["That is all I can say so far.", "I have no strong opinion yet.", "It is neither good nor bad.",
          "Nothing special to report.", "We will see how it holds up."]


def review(rng: random.Random, label: str, test: bool) -> str:
    film = rng.random() < 0.4
    subj = rng.choice(FILMS if film else PRODUCTS)
    pools = {"positive": (P_FILM if film else P_PROD, P_OPEN, P_TAIL),
             "negative": (N_FILM if film else N_PROD, N_OPEN, N_TAIL),
             "neutral": (U_FILM if film else U_PROD, U_OPEN, U_TAIL)}
    phrases, opens, tails = pools[label]
    ph = rng.choice(phrases)
    if test and rng.random() < HELD_OUT_P:
        ph = rng.choice(HELD_OUT[(label, film)])
    r = rng.random()
    plural = subj.startswith("these") or subj == "the headphones"
    if r < 0.12 and label != "neutral":
        # a mixed review: the clause after "but" carries the label
        minor = rng.choice(MINOR["negative" if label == "positive" else "positive"][1 if film else 0])
        text = f"{minor}, but {subj} {ph}."
    elif r < 0.35:
        ph2 = rng.choice([p for p in phrases if p != ph])
        text = f"{subj} {ph} and {ph2}."
    else:
        text = f"{subj} {ph}."
    if plural:
        for a, b in [(" it ", " they "), (" is ", " are "), (" has ", " have "), (" feels ", " feel "),
                     (" works ", " work "), (" comes ", " come "), (" does ", " do "), (" weighs ", " weigh "),
                     (" was ", " were "), (" its ", " their "), (" makes ", " make ")]:
            text = text.replace(a, b)
    opener = rng.choice(opens)
    text = f"{opener} {text}" if opener else cap(text)
    if rng.random() < 0.35:
        text += " " + rng.choice(tails)
    return text


def make_classification(rng: random.Random, n_test: int, n_train: int) -> tuple[list[dict], list[dict]]:
    def labels(n: int) -> list[str]:
        k_pos, k_neg = round(n * 25 / 60), round(n * 20 / 60)
        out = ["positive"] * k_pos + ["negative"] * k_neg + ["neutral"] * (n - k_pos - k_neg)
        rng.shuffle(out)
        return out

    seen: set[str] = set()

    def rows(n: int, prefix: str) -> list[dict]:
        out = []
        for lab in labels(n):
            while True:
                t = review(rng, lab, test=prefix == "cls")
                if t not in seen:
                    break
            seen.add(t)
            out.append({"id": f"{prefix}-{len(out) + 1:04d}", "text": t, "label": lab})
        return out

    test = rows(n_test, "cls")
    train = rows(n_train, "cls-train")
    return test, train


# ----------------------------------------------------------------------------------------------------------
# 5. Language modelling: weather reports, recipes, small stories, notices.
# ----------------------------------------------------------------------------------------------------------

def lm_weather(rng: random.Random) -> str:
    town = rng.choice(TOWNS + ["Zürich", "Montréal", "Malmö", "Köln"])
    cond = rng.choice(["sunny", "cloudy", "rainy", "windy", "foggy", "bright but cool"])
    hi = rng.randint(-3, 31)
    lo = hi - rng.randint(4, 10)
    unit = rng.choice([" °C", " degrees", "°C"])
    sents = [rng.choice([f"Good morning from {town}.", f"Here is the weather for {town}.", f"This is the forecast for {town}."]),
             f"Today will be {cond} with a high of {hi}{unit} and a low of {lo}{unit}."]
    extra = [
        rng.choice(["The wind comes from the west and will be light.", "A strong wind from the north will make it feel colder.",
                    "There is little wind today."]),
        rng.choice(["Rain moves in tonight — take an umbrella if you go out.", "Tomorrow looks a little warmer.",
                    "The weekend should stay dry.", "Snow is possible on the hills after midnight." if hi < 5 else
                    "Expect some sunshine in the afternoon."]),
        rng.choice(["Drivers should take care on wet roads.", "It is a good day for a walk in the park.",
                    "Farmers hope for rain later this week."]),
    ]
    k = rng.randint(0, 3)
    return " ".join(sents + rng.sample(extra, k))


DISHES = [("a tomato soup", ["tomatoes", "an onion", "garlic", "olive oil"], "Simmer", "fresh bread", (4, 8)),
          ("pancakes", ["flour", "two eggs", "milk", "a pinch of salt"], "Fry", "honey or jam", (1, 1)),
          ("a vegetable curry", ["potatoes", "carrots", "coconut milk", "curry paste"], "Cook", "rice", (4, 8)),
          ("a potato purée", ["potatoes", "butter", "warm milk", "nutmeg"], "Boil", "roast chicken", (3, 5)),
          ("an apple cake", ["apples", "sugar", "butter", "flour"], "Bake", "crème fraîche", (6, 10)),
          ("a bean salad", ["beans", "red onion", "lemon juice", "a jalapeño"], "Chill", "grilled fish", (4, 12)),
          ("a mushroom risotto", ["rice", "mushrooms", "stock", "parmesan"], "Stir", "a green salad", (4, 6)),
          ("crêpes", ["flour", "eggs", "milk", "butter"], "Fry", "lemon and sugar", (1, 1))]


def lm_recipe(rng: random.Random) -> str:
    dish, ings, verb, side, (m_lo, m_hi) = rng.choice(DISHES)
    ing = rng.sample(ings, 3)
    mins = rng.randint(m_lo, m_hi) * 5
    if verb == "Fry":
        mins = rng.randint(2, 4)
        ending = rng.choice([" on each side.", " on each side until golden."])
    elif verb == "Bake":
        ending = rng.choice([".", " until golden.", " at 180 °C."])
    elif verb == "Chill":
        ending = rng.choice([".", " before serving."])
    else:
        ending = rng.choice([".", ", stirring now and then."])
    sents = [f"To make {dish}, you need {ing[0]}, {ing[1]} and {ing[2]}."]
    if rng.random() < 0.7:
        sents.append(rng.choice(["First, wash and chop everything.", "First, mix the dry ingredients in a bowl.",
                                 "First, heat a large pan over medium heat.", "First, sauté the onion in a little oil."]))
    sents.append(f"{verb} for about {mins} minutes{ending}")
    if rng.random() < 0.6:
        sents.append(f"Serve with {side}.")
    if rng.random() < 0.3:
        sents.append(rng.choice(["It keeps for two days in the fridge.", "This serves four people.",
                                 "Children love it — and so do grown-ups."]))
    return " ".join(sents[:5])


STORY_NAMES = ["Mia", "Tom", "Zoë", "José", "Jürgen", "Renée", "Ali", "Sara", "Noah", "Léa", "Finn", "Ada"]


def lm_story(rng: random.Random) -> str:
    name = rng.choice(STORY_NAMES)
    pet = rng.choice(["cat", "dog", "goat", "duck", "rabbit"])
    pet_name = rng.choice(PET_NAMES)
    adj = rng.choice(["little", "clever", "lazy", "curious", "old", "noisy"])
    place = rng.choice(["garden", "barn", "forest", "kitchen", "village square", "river bank"])
    time = rng.choice(["morning", "afternoon", "evening", "rainy day", "winter night"])
    sents = [f"{name} had {a_an(adj)} {adj} {pet} called {pet_name}."]
    sents.append(f"One {time}, {pet_name} ran off to the {place} and did not come back.")
    if rng.random() < 0.7:
        sents.append(rng.choice([f"{name} looked everywhere and called {pet_name}'s name.",
                                 f"{name} asked the neighbours for help.",
                                 f"{name} was worried — it was getting dark."]))
    sents.append(rng.choice([f"At last, {pet_name} was found asleep under a tree.",
                             f"Later, {pet_name} came home covered in mud.",
                             f"In the end, a friendly baker brought {pet_name} back.",
                             f"Finally, {pet_name} appeared at the door, very hungry."]))
    if rng.random() < 0.4:
        sents.append(rng.choice([f"{name} laughed and gave {pet_name} a big hug.", "Everyone was happy again.",
                                 "From then on, the gate was always closed."]))
    return " ".join(sents[:5])


def lm_notice(rng: random.Random) -> str:
    town = rng.choice(TOWNS)
    place = rng.choice(["library", "swimming pool", "town hall", "museum", "post office", "café"])
    day = rng.choice(WEEKDAYS)
    hour = rng.randint(1, 5)
    sents = [f"The {place} in {town} will close early on {day}.",
             rng.choice([f"It will shut at {hour} p.m. because of repairs.", f"Doors close at {hour} p.m. for a staff meeting.",
                         f"It closes at {hour} p.m. for a private event."])]
    if rng.random() < 0.6:
        sents.append(rng.choice(["Normal opening hours start again the next day.", "We are sorry for any trouble.",
                                 "Please return borrowed items before then.", "Questions? Ask at the front desk."]))
    if rng.random() < 0.25:
        sents.append(rng.choice(["Thank you — the staff.", "See you soon!"]))
    return " ".join(sents)


def make_lm(rng: random.Random, n_test: int, n_train: int) -> tuple[list[dict], list[dict]]:
    families = [lm_weather, lm_recipe, lm_story, lm_notice]
    seen: set[str] = set()
    docs: list[str] = []
    while len(docs) < n_test + n_train:
        t = rng.choice(families)(rng)
        if t in seen:
            continue
        seen.add(t)
        docs.append(t)
    test = [{"id": f"lm-{i + 1:04d}", "text": t} for i, t in enumerate(docs[:n_test])]
    train = [{"id": f"lm-train-{i + 1:04d}", "text": t} for i, t in enumerate(docs[n_test:])]
    return test, train


# ----------------------------------------------------------------------------------------------------------

README = """# Demo data

Small, synthetic data sets for the `demo` suite: one task of each kind, so that `harness run suite=demo` works
offline on a fresh clone. Every file here is generated by

    python scripts/make_demo_data.py

with seed {seed}; the output is deterministic (running it again gives byte-identical files). The sentences come
from small grammars and templates with invented names, towns and companies: they are templated on purpose, so
that tiny models (see `scripts/train_demo_models.py`) can learn something in a minute or two on a CPU.

| file | rows | fields | what it is |
|------|------|--------|------------|
| `translation_test.jsonl` / `translation_train.jsonl` | {tr_test} / {tr_train} | `id`, `de`, `en` | German sentences from a small grammar (cases, gender, verb second) and their English translations |
| `summarization_test.jsonl` / `summarization_train.jsonl` | {sum_test} / {sum_train} | `id`, `document`, `summary` | short news items (sport, company results, town festivals, openings, weather) of 4-7 sentences; the summary is one sentence combining key facts |
| `qa_test.jsonl` / `qa_train.jsonl` | {qa_test} / {qa_train} | `id`, `context`, `question`, `answers` | extractive questions; every answer is a substring of the context, some questions accept two or three spans |
| `classification_test.jsonl` / `classification_train.jsonl` | {cls_test} / {cls_train} | `id`, `text`, `label` | short product and film reviews labelled `positive` / `negative` / `neutral`; not balanced ({cls_dist} in test); some test phrasings never occur in train |
| `lm_test.jsonl` / `lm_train.jsonl` | {lm_test} / {lm_train} | `id`, `text` | paragraphs of 2-5 sentences (weather reports, recipes, small stories, notices); some contain non-ASCII characters (é, ü, °, —) |

No test example appears in its train file. The train files are for the demo models and for baselines that
learn (majority class, unigram LM); they are never scored.

Licence: written by this project and released under the same licence as the repository.
"""


def write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    makers = {"translation": make_translation, "summarization": make_summarization, "qa": make_qa,
              "classification": make_classification, "lm": make_lm}
    counts = {}
    for i, (name, maker) in enumerate(makers.items()):
        rng = random.Random(args.seed * 100 + i)  # one stream per task: changing one task leaves the others
        n_test, n_train = SIZES[name]
        test, train = maker(rng, n_test, n_train)
        train_keys = {json.dumps({k: v for k, v in r.items() if k != "id"}, sort_keys=True) for r in train}
        for r in test:
            assert json.dumps({k: v for k, v in r.items() if k != "id"}, sort_keys=True) not in train_keys
        write_jsonl(args.out / f"{name}_test.jsonl", test)
        write_jsonl(args.out / f"{name}_train.jsonl", train)
        counts[name] = (len(test), len(train), test)
        print(f"{name}: {len(test)} test, {len(train)} train")

    cls_test = counts["classification"][2]
    dist = "/".join(str(sum(r["label"] == lab for r in cls_test)) for lab in ("positive", "negative", "neutral"))
    readme = README.format(
        seed=args.seed, tr_test=counts["translation"][0], tr_train=counts["translation"][1],
        sum_test=counts["summarization"][0], sum_train=counts["summarization"][1], qa_test=counts["qa"][0],
        qa_train=counts["qa"][1], cls_test=counts["classification"][0], cls_train=counts["classification"][1],
        cls_dist=dist + " positive/negative/neutral", lm_test=counts["lm"][0], lm_train=counts["lm"][1])
    with open(args.out / "README.md", "w", encoding="utf-8", newline="\n") as f:
        f.write(readme)
    total = sum(p.stat().st_size for p in args.out.iterdir() if p.is_file())
    print(f"wrote {args.out} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
