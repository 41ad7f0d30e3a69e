"""Spoken phrase templates: hazard warnings and status notices in en, fr, de, es.

Warnings are built from parts (count + class name + direction + one qualifier)
rather than free text so they stay short and predictable: "Bus ahead,
approaching", "Car on the left, very near", "Three people ahead". Only one
qualifier is spoken: "very near" outranks "approaching" (when something is very
near, whether it is still coming adds little and costs listening time), and
"near"/"far" are not spoken at all: being announced already says "close enough
to matter", and every extra word delays the next warning.

Class names are translated for the COCO classes a user is likely to put in a
hazard tier; any other label falls back to the detector's English name, so a
user-edited tier never breaks speech.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

LANGUAGES = ("en", "fr", "de", "es")

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

NOTICE_KEYS = ("camera_lost", "camera_back", "too_dark", "too_blurred", "captions_unavailable",
               "hazards_unavailable", "speech_fallback", "started", "stopped")

_NOTICES: dict[str, dict[str, str]] = {
    "en": {
        "camera_lost": "Camera lost", "camera_back": "Camera back", "too_dark": "Too dark to describe",
        "too_blurred": "Too blurred to describe", "captions_unavailable": "Descriptions unavailable",
        "hazards_unavailable": "Hazard detection unavailable", "speech_fallback": "Switched to backup voice",
        "started": "Assistant ready", "stopped": "Assistant stopped",
    },
    "fr": {
        "camera_lost": "Caméra perdue", "camera_back": "Caméra retrouvée", "too_dark": "Trop sombre pour décrire",
        "too_blurred": "Trop flou pour décrire", "captions_unavailable": "Descriptions indisponibles",
        "hazards_unavailable": "Détection des dangers indisponible", "speech_fallback": "Voix de secours activée",
        "started": "Assistant prêt", "stopped": "Assistant arrêté",
    },
    "de": {
        "camera_lost": "Kamera verloren", "camera_back": "Kamera wieder da", "too_dark": "Zu dunkel zum Beschreiben",
        "too_blurred": "Zu unscharf zum Beschreiben", "captions_unavailable": "Beschreibungen nicht verfügbar",
        "hazards_unavailable": "Gefahrenerkennung nicht verfügbar", "speech_fallback": "Ersatzstimme aktiv",
        "started": "Assistent bereit", "stopped": "Assistent beendet",
    },
    "es": {
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


def hazard_phrase(label: str, count: int, direction: str, proximity: str, approaching: bool,
                  language: str = "en") -> str:
    """One short warning: '[count] class direction[, qualifier]', first letter capitalised.

    ``direction`` is left/ahead/right; ``proximity`` far/near/very near. Only
    "very near" or else "approaching" is spoken as a qualifier (see module doc).
    """
    lang = _lang(language)
    count = max(1, int(count))
    name = class_name(label, count, lang)
    subject = name if count == 1 else f"{count_word(count, lang)} {name}"
    where = _DIRECTIONS[lang].get(direction, _DIRECTIONS[lang]["ahead"])
    very_near, approach_one, approach_many = _QUALIFIERS[lang]
    text = f"{subject} {where}"
    if proximity == "very near":
        text += f", {very_near}"
    elif approaching:
        text += f", {approach_one if count == 1 else approach_many}"
    return text[:1].upper() + text[1:]


def notice(key: str, language: str = "en") -> str:
    """A spoken status notice (camera_lost, camera_back, too_dark, ..., started, stopped)."""
    table = _NOTICES[_lang(language)]
    if key not in table:
        raise KeyError(f"unknown notice {key!r} (known: {', '.join(NOTICE_KEYS)})")
    return table[key]
