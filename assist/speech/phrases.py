"""Spoken phrase templates: hazard warnings and status notices in en, fr, de, es.

Warnings are built from parts (count + class name + direction + one qualifier)
rather than free text so they stay short and predictable: "Bus coming
ahead", "Car on the left, very near", "Three people ahead". Only one
qualifier is spoken: "very near" outranks "approaching" (when something is very
near, whether it is still coming adds little and costs listening time), and
"near"/"far" are not spoken at all: being announced already says "close enough
to matter", and every extra word delays the next warning.

Distance and direction follow ``speech.distance_unit`` and
``speech.direction_style``: "Car on the left, 8 metres", "Car at 10 o'clock,
about 15 metres", "Bus ahead, 4 steps". Distances are rounded to what a
listener can use (whole metres below 10, then "about" to the nearest 5 or 10);
"very near" replaces the number (the number adds nothing a listener can act
on that fast).

Each language was written for meaning, not word by word: French singulars
take their article ("Une personne devant": a bare "Personne devant" means
"nobody ahead"), French and Spanish put the distance after a preposition
("à 8 mètres", "a 8 metros"), German uses telegraphic "8 Meter" as spoken
navigation does, and Spanish clock positions are "a las 2".

Class names are translated for the COCO classes a user is likely to put in a
hazard tier; any other label falls back to the detector's English name, so a
user-edited tier never breaks speech.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

LANGUAGES = ("en", "fr", "de", "es")
PROXIMITY_ORDER = ("far", "near", "very near")

# label -> (singular, plural) per language. English plurals are listed too
# because "people", "buses", "sheep" do not follow "+s".
_NAMES: dict[str, dict[str, tuple[str, str]]] = {
    "en": {
        "person": ("person", "people"), "bicycle": ("bicycle", "bicycles"), "car": ("car", "cars"),
        "motorcycle": ("motorcycle", "motorcycles"), "bus": ("bus", "buses"), "train": ("train", "trains"),
        "truck": ("truck", "trucks"), "boat": ("boat", "boats"), "traffic light": ("traffic light", "traffic lights"),
        "fire hydrant": ("fire hydrant", "fire hydrants"), "stop sign": ("stop sign", "stop signs"),
        "parking meter": ("parking meter", "parking meters"), "bench": ("bench", "benches"),
        "bird": ("bird", "birds"), "cat": ("cat", "cats"), "dog": ("dog", "dogs"), "horse": ("horse", "horses"),
        "sheep": ("sheep", "sheep"), "cow": ("cow", "cows"), "elephant": ("elephant", "elephants"),
        "bear": ("bear", "bears"), "backpack": ("backpack", "backpacks"), "umbrella": ("umbrella", "umbrellas"),
        "suitcase": ("suitcase", "suitcases"), "skateboard": ("skateboard", "skateboards"),
        "chair": ("chair", "chairs"), "couch": ("couch", "couches"), "potted plant": ("potted plant", "potted plants"),
        "bed": ("bed", "beds"), "dining table": ("table", "tables"), "toilet": ("toilet", "toilets"),
        "refrigerator": ("refrigerator", "refrigerators"),
    },
    "fr": {
        "person": ("personne", "personnes"), "bicycle": ("vélo", "vélos"), "car": ("voiture", "voitures"),
        "motorcycle": ("moto", "motos"), "bus": ("bus", "bus"), "train": ("train", "trains"),
        "truck": ("camion", "camions"), "boat": ("bateau", "bateaux"), "traffic light": ("feu", "feux"),
        "fire hydrant": ("bouche d'incendie", "bouches d'incendie"), "stop sign": ("panneau stop", "panneaux stop"),
        "parking meter": ("parcmètre", "parcmètres"), "bench": ("banc", "bancs"),
        "bird": ("oiseau", "oiseaux"), "cat": ("chat", "chats"), "dog": ("chien", "chiens"),
        "horse": ("cheval", "chevaux"), "sheep": ("mouton", "moutons"), "cow": ("vache", "vaches"),
        "elephant": ("éléphant", "éléphants"), "bear": ("ours", "ours"), "backpack": ("sac à dos", "sacs à dos"),
        "umbrella": ("parapluie", "parapluies"), "suitcase": ("valise", "valises"),
        "skateboard": ("skateboard", "skateboards"), "chair": ("chaise", "chaises"),
        "couch": ("canapé", "canapés"), "potted plant": ("plante en pot", "plantes en pot"), "bed": ("lit", "lits"),
        "dining table": ("table", "tables"), "toilet": ("toilettes", "toilettes"),
        "refrigerator": ("réfrigérateur", "réfrigérateurs"),
    },
    "de": {
        "person": ("Person", "Personen"), "bicycle": ("Fahrrad", "Fahrräder"), "car": ("Auto", "Autos"),
        "motorcycle": ("Motorrad", "Motorräder"), "bus": ("Bus", "Busse"), "train": ("Zug", "Züge"),
        "truck": ("Lastwagen", "Lastwagen"), "boat": ("Boot", "Boote"), "traffic light": ("Ampel", "Ampeln"),
        "fire hydrant": ("Hydrant", "Hydranten"), "stop sign": ("Stoppschild", "Stoppschilder"),
        "parking meter": ("Parkuhr", "Parkuhren"), "bench": ("Bank", "Bänke"),
        "bird": ("Vogel", "Vögel"), "cat": ("Katze", "Katzen"), "dog": ("Hund", "Hunde"),
        "horse": ("Pferd", "Pferde"), "sheep": ("Schaf", "Schafe"), "cow": ("Kuh", "Kühe"),
        "elephant": ("Elefant", "Elefanten"), "bear": ("Bär", "Bären"), "backpack": ("Rucksack", "Rucksäcke"),
        "umbrella": ("Schirm", "Schirme"), "suitcase": ("Koffer", "Koffer"),
        "skateboard": ("Skateboard", "Skateboards"), "chair": ("Stuhl", "Stühle"), "couch": ("Sofa", "Sofas"),
        "potted plant": ("Topfpflanze", "Topfpflanzen"), "bed": ("Bett", "Betten"),
        "dining table": ("Tisch", "Tische"), "toilet": ("Toilette", "Toiletten"),
        "refrigerator": ("Kühlschrank", "Kühlschränke"),
    },
    "es": {
        "person": ("persona", "personas"), "bicycle": ("bicicleta", "bicicletas"), "car": ("coche", "coches"),
        "motorcycle": ("moto", "motos"), "bus": ("autobús", "autobuses"), "train": ("tren", "trenes"),
        "truck": ("camión", "camiones"), "boat": ("barco", "barcos"), "traffic light": ("semáforo", "semáforos"),
        "fire hydrant": ("boca de incendios", "bocas de incendios"),
        "stop sign": ("señal de stop", "señales de stop"), "parking meter": ("parquímetro", "parquímetros"),
        "bench": ("banco", "bancos"), "bird": ("pájaro", "pájaros"), "cat": ("gato", "gatos"),
        "dog": ("perro", "perros"), "horse": ("caballo", "caballos"), "sheep": ("oveja", "ovejas"),
        "cow": ("vaca", "vacas"), "elephant": ("elefante", "elefantes"), "bear": ("oso", "osos"),
        "backpack": ("mochila", "mochilas"), "umbrella": ("paraguas", "paraguas"),
        "suitcase": ("maleta", "maletas"), "skateboard": ("monopatín", "monopatines"),
        "chair": ("silla", "sillas"), "couch": ("sofá", "sofás"), "potted plant": ("planta", "plantas"),
        "bed": ("cama", "camas"), "dining table": ("mesa", "mesas"), "toilet": ("inodoro", "inodoros"),
        "refrigerator": ("nevera", "neveras"),
    },
}

# Count words 2..9; larger groups are spoken as digits (TTS engines read them).
_COUNTS: dict[str, tuple[str, ...]] = {
    "en": ("two", "three", "four", "five", "six", "seven", "eight", "nine"),
    "fr": ("deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf"),
    "de": ("zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun"),
    "es": ("dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve"),
}

_DIRECTIONS: dict[str, dict[str, str]] = {
    "en": {"ahead": "ahead", "left": "on the left", "right": "on the right"},
    "fr": {"ahead": "devant", "left": "à gauche", "right": "à droite"},
    "de": {"ahead": "voraus", "left": "links", "right": "rechts"},
    "es": {"ahead": "delante", "left": "a la izquierda", "right": "a la derecha"},
}

# (very near, approaching singular, approaching plural). The qualifiers are
# chosen to be invariant in gender where the language allows it ("très près",
# "en approche", "acercándose"), so one template fits every class name.
_QUALIFIERS: dict[str, tuple[str, str, str]] = {
    "en": ("very near", "approaching", "approaching"),
    "fr": ("très près", "en approche", "en approche"),
    "de": ("sehr nah", "nähert sich", "nähern sich"),
    "es": ("muy cerca", "acercándose", "acercándose"),
}

# Languages that say an approach as a verb after the subject, before where it is:
# "Car coming on the left, 9 metres" is what a companion would say, and it is 0.6 s
# shorter at 175 wpm than "Car on the left, 9 metres, approaching" (one word of five
# letters less and one pause less): on the shared sidewalk walk, three approaching
# hazards in 17 s, that is the difference between 0.58 and 0.5 talk share
# (bench/RESULTS.md). The other languages keep their qualifier at the end.
_APPROACH_VERB: dict[str, tuple[str, str]] = {
    "en": ("coming", "coming"),
}

# French indefinite articles: feminine nouns (others are masculine); "toilettes" is plural only.
_FR_FEMININE = frozenset({"person", "car", "motorcycle", "fire hydrant", "cow", "suitcase", "chair",
                          "potted plant", "dining table"})
_FR_PLURAL_ONLY = frozenset({"toilet"})

# Clock positions: "at 2 o'clock". French 1 takes the singular "heure".
_CLOCK: dict[str, tuple[str, str]] = {  # (one, many) with {h}
    "en": ("at {h} o'clock", "at {h} o'clock"),
    "fr": ("à {h} heure", "à {h} heures"),
    "de": ("auf {h} Uhr", "auf {h} Uhr"),
    "es": ("a la {h}", "a las {h}"),
}

# Distances: (one unit, n units, about n units, over n units) per unit and language.
_DISTANCE: dict[str, dict[str, tuple[str, str, str, str]]] = {
    "metres": {
        "en": ("1 metre", "{n} metres", "about {n} metres", "over {n} metres"),
        "fr": ("à un mètre", "à {n} mètres", "à environ {n} mètres", "à plus de {n} mètres"),
        "de": ("ein Meter", "{n} Meter", "etwa {n} Meter", "über {n} Meter"),
        "es": ("a un metro", "a {n} metros", "a unos {n} metros", "a más de {n} metros"),
    },
    "steps": {
        "en": ("1 step", "{n} steps", "about {n} steps", "over {n} steps"),
        "fr": ("à un pas", "à {n} pas", "à environ {n} pas", "à plus de {n} pas"),
        "de": ("ein Schritt", "{n} Schritte", "etwa {n} Schritte", "über {n} Schritte"),
        "es": ("a un paso", "a {n} pasos", "a unos {n} pasos", "a más de {n} pasos"),
    },
}
STEP_M = 0.7  # one walking step, metres (an adult's average stride is 0.65-0.8 m)

NOTICE_KEYS = ("camera_lost", "camera_back", "too_dark", "too_blurred", "captions_unavailable",
               "hazards_unavailable", "speech_fallback", "started", "stopped", "hazards_back", "captions_back")

_NOTICES: dict[str, dict[str, str]] = {
    "en": {
        "hazards_back": "Hazard detection back", "captions_back": "Descriptions back",
        "camera_lost": "Camera lost", "camera_back": "Camera back", "too_dark": "Too dark to describe",
        "too_blurred": "Too blurred to describe", "captions_unavailable": "Descriptions unavailable",
        "hazards_unavailable": "Hazard detection unavailable", "speech_fallback": "Switched to backup voice",
        "started": "Assistant ready", "stopped": "Assistant stopped",
    },
    "fr": {
        "hazards_back": "Détection des dangers rétablie", "captions_back": "Descriptions rétablies",
        "camera_lost": "Caméra perdue", "camera_back": "Caméra retrouvée", "too_dark": "Trop sombre pour décrire",
        "too_blurred": "Trop flou pour décrire", "captions_unavailable": "Descriptions indisponibles",
        "hazards_unavailable": "Détection des dangers indisponible", "speech_fallback": "Voix de secours activée",
        "started": "Assistant prêt", "stopped": "Assistant arrêté",
    },
    "de": {
        "hazards_back": "Gefahrenerkennung wieder da", "captions_back": "Beschreibungen wieder da",
        "camera_lost": "Kamera verloren", "camera_back": "Kamera wieder da", "too_dark": "Zu dunkel zum Beschreiben",
        "too_blurred": "Zu unscharf zum Beschreiben", "captions_unavailable": "Beschreibungen nicht verfügbar",
        "hazards_unavailable": "Gefahrenerkennung nicht verfügbar", "speech_fallback": "Ersatzstimme aktiv",
        "started": "Assistent bereit", "stopped": "Assistent beendet",
    },
    "es": {
        "hazards_back": "Detección de peligros recuperada", "captions_back": "Descripciones recuperadas",
        "camera_lost": "Cámara perdida", "camera_back": "Cámara recuperada",
        "too_dark": "Demasiado oscuro para describir",
        "too_blurred": "Demasiado borroso para describir", "captions_unavailable": "Descripciones no disponibles",
        "hazards_unavailable": "Detección de peligros no disponible", "speech_fallback": "Voz de respaldo activada",
        "started": "Asistente listo", "stopped": "Asistente detenido",
    },
}


def _lang(language: str) -> str:
    """The language to use; unknown codes fall back to English (config validation prevents them)."""
    if language in LANGUAGES:
        return language
    log.warning("no phrases for language %r, using English", language)
    return "en"


def _english_plural(label: str) -> str:
    return label + ("es" if label.endswith(("s", "sh", "ch", "x")) else "s")


def translated_labels(language: str) -> frozenset[str]:
    """Detector labels with their own words in ``language`` (others are spoken in English)."""
    return frozenset(_NAMES[_lang(language)])


def class_name(label: str, count: int = 1, language: str = "en") -> str:
    """The spoken name of a detector class, singular or plural (unknown labels stay English)."""
    lang = _lang(language)
    names = _NAMES[lang].get(label) or _NAMES["en"].get(label) or (label, _english_plural(label))
    return names[0] if count == 1 else names[1]


def count_word(count: int, language: str = "en") -> str:
    """'two'..'nine' in the language, digits above (and for 0/1, which phrases never use)."""
    words = _COUNTS[_lang(language)]
    return words[count - 2] if 2 <= count <= 9 else str(count)


def round_distance(distance_m: float, unit: str = "metres") -> tuple[int, str]:
    """(value, kind) a listener can use: kind is ``one``, ``exact`` (whole units below
    10), ``about`` (to 5 below 30, to 10 below 100) or ``over`` (100 and more)."""
    v = distance_m / STEP_M if unit == "steps" else distance_m
    if v < 1.5:
        return 1, "one"
    if v < 9.5:
        return round(v), "exact"
    if v < 30:
        return int(5 * round(v / 5)), "about"
    if v < 100:
        return int(10 * round(v / 10)), "about"
    return 100, "over"


def distance_words(distance_m: float, unit: str = "metres", language: str = "en") -> str:
    """A distance as said: "3 metres", "about 15 metres", "à 4 mètres", "12 steps"; "" for unit ``none``."""
    if unit not in _DISTANCE:
        return ""
    one, many, about, over = _DISTANCE[unit][_lang(language)]
    n, kind = round_distance(distance_m, unit)
    template = {"one": one, "exact": many, "about": about, "over": over}[kind]
    return template.format(n=n)


def clock_words(clock: int, language: str = "en") -> str:
    """A clock position as said: "at 2 o'clock", "à 2 heures", "auf 2 Uhr", "a las 2"."""
    one, many = _CLOCK[_lang(language)]
    return (one if clock == 1 else many).format(h=int(clock))


def _subject(label: str, count: int, lang: str) -> str:
    name = class_name(label, count, lang)
    if count != 1:
        return f"{count_word(count, lang)} {name}"
    if lang == "fr":
        article = "des" if label in _FR_PLURAL_ONLY else "une" if label in _FR_FEMININE else "un"
        return f"{article} {name}"
    return name


def hazard_phrase(label: str, count: int, direction: str, proximity: str, approaching: bool,
                  language: str = "en", *, distance_m: float | None = None, clock: int | None = None,
                  distance_unit: str = "none", direction_style: str = "sides") -> str:
    """One short warning: '[count] class where[, distance][, qualifier]', first letter capitalised
    (English says an approach as a verb: 'Car coming on the left, 9 metres').

    ``direction`` is left/ahead/right (or, with ``direction_style="clock"`` and
    a ``clock`` 1..12, "at 2 o'clock"); ``proximity`` far/near/very near.
    "very near" is said as such; otherwise the distance (``distance_unit``
    metres/steps, when ``distance_m`` is given) and "approaching" (see module doc).
    """
    lang = _lang(language)
    count = max(1, int(count))
    subject = _subject(label, count, lang)
    if direction_style == "clock" and clock is not None and 1 <= int(clock) <= 12:
        where = clock_words(int(clock), lang)
    else:
        where = _DIRECTIONS[lang].get(direction, _DIRECTIONS[lang]["ahead"])
    very_near, approach_one, approach_many = _QUALIFIERS[lang]
    verb = _APPROACH_VERB.get(lang) if approaching and proximity != "very near" else None
    text = f"{subject} {verb[0] if count == 1 else verb[1]} {where}" if verb else f"{subject} {where}"
    if proximity == "very near":
        text += f", {very_near}"
    else:
        if distance_m is not None and distance_unit in _DISTANCE:
            text += f", {distance_words(distance_m, distance_unit, lang)}"
        if approaching and verb is None:
            text += f", {approach_one if count == 1 else approach_many}"
    return text[:1].upper() + text[1:]


def notice(key: str, language: str = "en") -> str:
    """A spoken status notice (camera_lost, camera_back, too_dark, ..., started, stopped)."""
    table = _NOTICES[_lang(language)]
    if key not in table:
        raise KeyError(f"unknown notice {key!r} (known: {', '.join(NOTICE_KEYS)})")
    return table[key]
