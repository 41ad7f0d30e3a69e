"""Caption text rules: clean-up of a captioner's sentence and grounding against detections.

Everything here is plain string work on one sentence, so it is fast, has no
model dependency and is tested word for word.

- :func:`clean_caption` turns a raw captioner output ("a picture of a man a man
  riding a bike down a") into one spoken sentence ("A man riding a bike down.").
- :func:`ground_caption` makes the sentence honest about what the detector
  sees: a COCO object the caption names but the detector does not see at all
  is hedged ("possibly a dog"); a hazard the detector sees close ahead that the
  caption misses is appended ("A bus close ahead."). The rule is deliberately
  simple: captioners hallucinate common co-occurring objects (a "dog" on every
  porch), and a blind listener cannot check, so we only soften, never delete.

The description made from detections alone (no captioner) lives in
:mod:`assist.describe.from_detections`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from assist.config import HazardConfig
from assist.core.detection import Detection
from assist.hazards.geometry import direction_of, warned_labels
from assist.speech import phrases

# The defaults of [hazards] (config.py is their one place); CaptionEngine passes the live values.
_HAZARD_DEFAULTS = HazardConfig()
DEFAULT_AHEAD_WIDTH = _HAZARD_DEFAULTS.ahead_width
DEFAULT_NEAR_HEIGHT = _HAZARD_DEFAULTS.near_height
DEFAULT_HAZARD_LABELS: tuple[str, ...] = warned_labels(_HAZARD_DEFAULTS)

COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)

# Caption words -> COCO class. Plurals are generated below; these are the
# synonyms captioners (and COCO's human captions) actually use. Words that are
# often not the object are left out on purpose: "orange" (a colour), "mouse"
# (an animal), "remote" (an adjective), "sign", "light", "ball" of yarn... A
# word missing here is simply never hedged, which is the safe side.
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "person": ("person", "man", "woman", "people", "boy", "girl", "child", "kid", "guy", "lady", "player",
               "skier", "surfer", "skateboarder", "snowboarder", "rider", "baby", "pedestrian", "gentleman",
               "toddler", "adult", "teenager", "crowd", "biker", "cyclist", "batter", "pitcher", "catcher",
               "officer", "policeman", "soldier", "worker", "chef", "family", "tourist"),
    "bicycle": ("bicycle", "bike"),
    "car": ("car", "taxi", "cab", "sedan", "suv", "jeep", "van"),
    "motorcycle": ("motorcycle", "motorbike", "moped", "motor bike"),
    "airplane": ("airplane", "plane", "jet", "aircraft", "airliner", "aeroplane", "jetliner"),
    "bus": ("bus", "double decker", "school bus"),
    "train": ("train", "locomotive", "tram", "streetcar", "trolley"),
    "truck": ("truck", "lorry", "pickup", "pickup truck", "firetruck", "fire truck"),
    "boat": ("boat", "ship", "sailboat", "canoe", "kayak", "yacht", "ferry"),
    "traffic light": ("traffic light", "stoplight", "stop light", "traffic signal"),
    "fire hydrant": ("fire hydrant", "hydrant"),
    "stop sign": ("stop sign",),
    "parking meter": ("parking meter", "meter"),
    "bench": ("bench",),
    "bird": ("bird", "pigeon", "seagull", "gull", "duck", "goose", "parrot", "swan"),
    "cat": ("cat", "kitten", "kitty"),
    "dog": ("dog", "puppy", "pup", "doggy"),
    "horse": ("horse", "pony", "foal"),
    "sheep": ("sheep", "lamb"),
    "cow": ("cow", "cattle", "bull", "calf", "ox"),
    "elephant": ("elephant",), "bear": ("bear",), "zebra": ("zebra",), "giraffe": ("giraffe",),
    "backpack": ("backpack", "rucksack"),
    "umbrella": ("umbrella", "parasol"),
    "handbag": ("handbag", "purse"),
    "tie": ("tie", "necktie"),
    "suitcase": ("suitcase", "luggage"),
    "frisbee": ("frisbee",),
    "skis": ("skis", "ski"),
    "snowboard": ("snowboard",),
    "sports ball": ("ball", "soccer ball", "tennis ball"),
    "kite": ("kite",),
    "baseball bat": ("baseball bat", "bat"),
    "baseball glove": ("baseball glove", "mitt"),
    "skateboard": ("skateboard", "skate board"),
    "surfboard": ("surfboard", "surf board"),
    "tennis racket": ("tennis racket", "racket", "racquet", "tennis racquet"),
    "bottle": ("bottle",),
    "wine glass": ("wine glass",),
    "cup": ("cup", "mug"),
    "fork": ("fork",), "knife": ("knife",), "spoon": ("spoon",), "bowl": ("bowl",),
    "banana": ("banana",), "apple": ("apple",), "sandwich": ("sandwich", "burger", "hamburger"),
    "broccoli": ("broccoli",), "carrot": ("carrot",), "hot dog": ("hot dog", "hotdog"),
    "pizza": ("pizza",), "donut": ("donut", "doughnut"), "cake": ("cake", "cupcake"),
    "chair": ("chair", "armchair", "stool"),
    "couch": ("couch", "sofa"),
    "potted plant": ("potted plant", "houseplant"),
    "bed": ("bed",),
    "dining table": ("dining table", "table"),
    "toilet": ("toilet",),
    "tv": ("tv", "television", "tv set"),
    "laptop": ("laptop", "notebook computer"),
    "remote": ("remote control", "remote controller"),
    "keyboard": ("keyboard",),
    "cell phone": ("cell phone", "cellphone", "phone", "smartphone", "mobile phone"),
    "microwave": ("microwave",), "oven": ("oven", "stove"), "toaster": ("toaster",), "sink": ("sink",),
    "refrigerator": ("refrigerator", "fridge"),
    "book": ("book",), "clock": ("clock",), "vase": ("vase",), "scissors": ("scissors",),
    "teddy bear": ("teddy bear", "teddy"),
    "hair drier": ("hair drier", "hair dryer", "blow dryer"),
    "toothbrush": ("toothbrush",),
}

_IRREGULAR_PLURALS = {
    "man": "men", "woman": "women", "person": "people", "child": "children", "gentleman": "gentlemen",
    "policeman": "policemen", "knife": "knives", "calf": "calves", "ox": "oxen", "foal": "foals",
    "sheep": "sheep", "cattle": "cattle", "skis": "skis", "scissors": "scissors", "people": "persons",
    "goose": "geese", "broccoli": "broccoli", "luggage": "luggage", "crowd": "crowds", "family": "families",
}


def _plural(word: str) -> str:
    """English plural of a (possibly multi-word) noun: the last word is inflected."""
    head, _, last = word.rpartition(" ")
    if last in _IRREGULAR_PLURALS:
        plural = _IRREGULAR_PLURALS[last]
    elif last.endswith(("s", "sh", "ch", "x", "z")):
        plural = last + "es"
    elif last.endswith("y") and len(last) > 1 and last[-2] not in "aeiou":
        plural = last[:-1] + "ies"
    else:
        plural = last + "s"
    return f"{head} {plural}" if head else plural


# Class names that are usually something else in a caption: "an orange wall",
# "a remote village", "a mouse" (the animal). Their synonyms above still count.
_AMBIGUOUS_CLASS_NAMES = {"orange", "remote", "mouse"}


def _build_noun_table() -> dict[tuple[str, ...], str]:
    table: dict[tuple[str, ...], str] = {}
    for cls, words in _SYNONYMS.items():
        for w in (cls if cls not in _AMBIGUOUS_CLASS_NAMES else "", *words):
            if not w:
                continue
            for form in (w, _plural(w)):
                table.setdefault(tuple(form.split()), cls)
    # "people" is itself a plural of person; "persons" is produced above.
    table[("people",)] = "person"
    return table


NOUN_TO_CLASS: dict[tuple[str, ...], str] = _build_noun_table()
_MAX_NOUN_WORDS = max(len(k) for k in NOUN_TO_CLASS)

# ------------------------------------------------------------------ clean-up

# Openings that carry no content for a listener ("a picture of a dog" -> "a dog").
_FILLER_OPENINGS = (
    "a picture of", "an image of", "a photo of", "a photograph of", "a snapshot of", "a screenshot of",
    "this is a picture of", "this is an image of", "this is a photo of", "this is",
    "there is", "there are", "there's", "it is", "image of", "picture of", "photo of",
)
# BLIP's well-known tokenisation artefacts ("arafed man riding a horse").
_ARTEFACTS = {"arafed", "araffe", "arafe", "araffed", "arrafed", "araf"}
# Words a sentence cut short by max_new_tokens may end on; they are dropped so
# the sentence does not trail off ("a man riding a bike down a" -> "...down").
_DANGLING = {"a", "an", "the", "and", "or", "of", "with", "to", "for", "at", "from", "on", "in", "near",
             "next", "by", "is", "are", "his", "her", "their", "its", "some", "that", "while", "as", "into",
             "onto", "under", "over", "behind", "beside", "between"}

_WORD_RE = re.compile(r"[^\s]+")


def _drop_repeats(words: list[str]) -> list[str]:
    """Remove degenerate repetition: adjacent repeated phrases ("a man a man
    riding"; from 3 words on, the sentence is cut after the first copy), and a later repeat of any phrase of 4+ words, which
    is where a greedy decoder has started to loop ("a cat on a bed with a cat
    on a bed"): the sentence is cut there. Shorter non-adjacent repeats are
    normal English ("a man and a woman") and stay."""
    def norm(ws: Sequence[str]) -> list[str]:
        return [w.lower().strip(",;:") for w in ws]

    changed = True
    while changed:
        changed = False
        low = norm(words)
        n_max = len(words) // 2
        for n in range(n_max, 0, -1):
            for i in range(len(words) - 2 * n + 1):
                if low[i:i + n] == low[i + n:i + 2 * n]:
                    # A repeated long phrase means the decoder looped: what follows is
                    # more of the loop, so cut there. A short one ("a man a man") is a
                    # stutter: drop the copy and keep the rest.
                    del words[i + n:(len(words) if n >= 3 else i + 2 * n)]
                    changed = True
                    break
            if changed:
                break
        if changed:
            continue
        low = norm(words)
        for n in range(len(words) // 2, 3, -1):
            seen: set[tuple[str, ...]] = set()
            for i in range(len(words) - n + 1):
                key = tuple(low[i:i + n])
                if key in seen:
                    del words[i:]  # the loop restarts here: everything after is more of the same
                    changed = True
                    break
                seen.add(key)
            if changed:
                break
    return words


def clean_caption(text: str | None) -> str:
    """Make a raw captioner output one clean spoken sentence.

    Trims, keeps the first sentence, removes filler openings ("a picture of",
    "there is"), BLIP artefacts ("arafed"), repeated phrases and words left
    dangling by a length cut, capitalises and ends with a period. Returns ""
    when nothing is left (the caller then falls back to detections).
    Idempotent: one rule can expose another ("a a picture of man": dropping
    the repeat exposes the filler), so the rules run until nothing changes.
    """
    out = _clean_once(text)
    for _ in range(4):
        again = _clean_once(out)
        if again == out:
            break
        out = again
    return out


def _clean_once(text: str | None) -> str:
    """One pass of the clean-up rules of :func:`clean_caption`."""
    if not text:
        return ""
    s = " ".join(str(text).replace("\n", " ").split())
    # One sentence: cut at the first terminator that is followed by more text.
    m = re.search(r"[.!?](\s|$)", s)
    if m:
        s = s[:m.start()]
    s = s.strip(" \t.,;:!?-\"'")
    # Tokenisers of some captioners leave spaces before punctuation ("a dog , a cat").
    s = re.sub(r"\s+([,;:])", r"\1", s)
    words = _WORD_RE.findall(s)
    # BLIP's "arafed" stands where an article belongs ("arafed man" = "a man").
    words = [("a" if i == 0 or words[i - 1].lower() not in _DETERMINERS else "") if w.lower() in _ARTEFACTS else w
             for i, w in enumerate(words)]
    words = [w for w in words if w]
    # Filler openings, possibly stacked ("there is a picture of ...").
    stripped = True
    while stripped and words:
        stripped = False
        low = " ".join(words).lower()
        for filler in _FILLER_OPENINGS:
            if low == filler or low.startswith(filler + " "):
                words = words[len(filler.split()):]
                stripped = True
                break
    words = _drop_repeats(words)
    while words and words[-1].lower().strip(",;:") in _DANGLING:
        words.pop()
    if not words:
        return ""
    s = " ".join(words).rstrip(",;:")
    return s[:1].upper() + s[1:] + "."


# ------------------------------------------------------------------ positions and names


# English names for classes whose detector name is not how people say it, or
# whose plural is irregular; other labels use assist.speech.phrases.
_EN_NAMES: dict[str, tuple[str, str]] = {
    "person": ("person", "people"), "dining table": ("table", "tables"), "sports ball": ("ball", "balls"),
    "cell phone": ("phone", "phones"), "tv": ("TV", "TVs"), "hair drier": ("hair dryer", "hair dryers"),
    "knife": ("knife", "knives"), "mouse": ("computer mouse", "computer mice"), "skis": ("pair of skis", "skis"),
    "scissors": ("pair of scissors", "scissors"), "sheep": ("sheep", "sheep"), "remote": ("remote", "remotes"),
    "wine glass": ("wine glass", "wine glasses"), "broccoli": ("broccoli", "broccoli"),
}


def english_name(label: str, count: int = 1) -> str:
    """Spoken English name of a detector label, singular or plural."""
    if label in _EN_NAMES:
        one, many = _EN_NAMES[label]
    else:
        one, many = label, _plural(label)
    return one if count == 1 else many


def _with_article(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


# ------------------------------------------------------------------ grounding

# Words that start a noun phrase; "possibly" goes before them ("possibly a dog").
_DETERMINERS = {"a", "an", "the", "two", "three", "four", "five", "six", "several", "some", "many", "one",
                "his", "her", "their", "its", "this", "that", "these", "those", "another", "few", "multiple",
                "lots", "couple", "group", "bunch", "herd", "flock", "pair"}
_COLLECTIVES = {"group", "couple", "bunch", "herd", "flock", "pair", "lot", "lots", "number", "pack", "team",
                "line", "row", "crowd", "family", "fleet", "stack", "pile"}
# Words that end the backwards walk: the noun phrase cannot reach past them.
_PHRASE_BREAKS = {"and", "or", "with", "of", "on", "in", "at", "by", "near", "next", "to", "from", "while",
                  "is", "are", "behind", "under", "over", "beside", "holding", "riding", "sitting", "standing"}


def caption_classes(caption: str) -> set[str]:
    """The COCO classes a caption mentions (through synonyms and plurals)."""
    return {cls for _, _, cls in _find_mentions(_tokens(caption))}


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z]+(?:-[a-z]+)*", text.lower())


def _find_mentions(words: Sequence[str]) -> list[tuple[int, int, str]]:
    """(start, end, class) for every noun phrase that names a COCO class; the
    longest match wins, so "hot dog" is food and "teddy bear" is a toy."""
    out = []
    i = 0
    while i < len(words):
        for n in range(min(_MAX_NOUN_WORDS, len(words) - i), 0, -1):
            cls = NOUN_TO_CLASS.get(tuple(words[i:i + n]))
            if cls is not None:
                out.append((i, i + n, cls))
                i += n
                break
        else:
            i += 1
    return out


def _hazards_close_ahead(detections: Sequence[Detection], hazard_labels: Iterable[str], near_height: float,
                         ahead_width: float) -> list[tuple[str, int, float]]:
    """(label, count, largest height) of hazard classes near and in the ahead band, largest first."""
    wanted = set(hazard_labels)
    found: dict[str, list[Detection]] = {}
    for d in detections:
        if d.label in wanted and d.height >= near_height and direction_of(d.center_x, ahead_width) == "ahead":
            found.setdefault(d.label, []).append(d)
    rows = [(label, len(ds), max(d.height for d in ds)) for label, ds in found.items()]
    return sorted(rows, key=lambda r: -r[2])


def ground_caption(caption: str, detections: Sequence[Detection], *, ahead_width: float = DEFAULT_AHEAD_WIDTH,
                   near_height: float = DEFAULT_NEAR_HEIGHT,
                   hazard_labels: Iterable[str] = DEFAULT_HAZARD_LABELS, max_additions: int = 2,
                   add_from: Sequence[Detection] | None = None) -> str:
    """Make a clean caption honest about what the detector sees.

    1. Each COCO object the caption names that the detector does not see at all
       is hedged: "A dog on a porch." -> "Possibly a dog on a porch."
    2. Each hazard class the detector sees close ahead (box at least
       ``near_height`` tall, centre in the ahead band) that the caption does not
       mention is appended: "A street at night. A bus close ahead."

    Objects outside COCO's 80 classes ("building", "tree") cannot be checked and
    are left alone. Pass the *latest* detections of the same view; a caller
    without detector information should not call this at all. ``add_from``
    (default: ``detections``) limits step 2 to these detections, e.g. all but
    the objects the user was just warned about.
    """
    if not caption:
        return caption
    body = caption.rstrip()
    end = body[-1] if body[-1] in ".!?" else "."
    body = body.rstrip(".!?")
    words = body.split()
    if not words:
        return caption
    # Lower-case the sentence-initial capital so an inserted "possibly" can lead.
    words[0] = words[0][:1].lower() + words[0][1:]
    bare = [re.sub(r"[^a-z-]", "", w.lower()) for w in words]

    seen = {d.label for d in detections}
    mentions = _find_mentions(bare)
    # Insert from the back so earlier indices stay valid.
    inserts: list[int] = []
    hedged: set[str] = set()
    for start, _end, cls in mentions:
        if cls in seen or cls in hedged:
            continue
        hedged.add(cls)
        # The noun phrase starts at the nearest determiner before the noun
        # ("a man walking [a] dog"), extended over determiners right before it
        # ("[the two] dogs") and across "of" after a collective ("[a group] of people").
        at = start
        j = start - 1
        while j >= 0 and start - j <= 5:
            if bare[j] in _DETERMINERS:
                at = j
                while at > 0 and bare[at - 1] in _DETERMINERS:
                    at -= 1
                break
            if bare[j] == "of" and j > 0 and bare[j - 1] in _COLLECTIVES:
                j -= 1
                continue
            if bare[j] in _PHRASE_BREAKS:
                break
            j -= 1
        if at == 0 or bare[at - 1] != "possibly":
            inserts.append(at)
    for at in sorted(set(inserts), reverse=True):
        words.insert(at, "possibly")
    text = " ".join(words)
    text = text[:1].upper() + text[1:] + end

    mentioned = {cls for _, _, cls in mentions}
    added = 0
    addable = detections if add_from is None else add_from
    for label, count, _h in _hazards_close_ahead(addable, hazard_labels, near_height, ahead_width):
        if label in mentioned or added >= max_additions:
            continue
        name = english_name(label, count)
        subject = _with_article(name) if count == 1 else f"{phrases.count_word(count, 'en')} {name}"
        text += f" {subject[:1].upper() + subject[1:]} close ahead."
        added += 1
    return text
