"""Phrase templates: warnings and notices in every supported language."""

from __future__ import annotations

import pytest

from assist.config import HazardConfig, SpeechConfig, section_fields
from assist.speech.phrases import (
    LANGUAGES,
    NOTICE_KEYS,
    class_name,
    distance_words,
    hazard_phrase,
    notice,
    round_distance,
    translated_labels,
)


def test_english_examples() -> None:
    # An approach is a verb after the subject in English: shorter than a trailing
    # "approaching" (one pause and five letters less) and what a companion would say.
    assert hazard_phrase("bus", 1, "ahead", "near", True, "en") == "Bus coming ahead"
    assert hazard_phrase("car", 1, "left", "far", True, "en", distance_m=8.6, distance_unit="metres") == \
        "Car coming on the left, 9 metres"
    assert hazard_phrase("person", 2, "right", "near", True, "en") == "Two people coming on the right"
    # Very near outranks the approach: said as such, no verb.
    assert hazard_phrase("bus", 1, "ahead", "very near", True, "en") == "Bus ahead, very near"
    assert hazard_phrase("car", 1, "left", "very near", False, "en") == "Car on the left, very near"
    assert hazard_phrase("person", 3, "ahead", "near", False, "en") == "Three people ahead"
    assert hazard_phrase("bench", 2, "right", "very near", True, "en") == "Two benches on the right, very near"
    assert hazard_phrase("person", 12, "ahead", "far", False, "en") == "12 people ahead"


def test_french_singulars_take_their_article() -> None:
    # A bare "Personne devant" means "nobody ahead".
    assert hazard_phrase("person", 1, "ahead", "near", False, "fr") == "Une personne devant"
    assert hazard_phrase("bus", 1, "right", "very near", False, "fr") == "Un bus à droite, très près"
    assert hazard_phrase("car", 1, "left", "near", True, "fr") == "Une voiture à gauche, en approche"
    assert hazard_phrase("toilet", 1, "left", "near", False, "fr") == "Des toilettes à gauche"


def test_distances_are_rounded_to_what_a_listener_can_use() -> None:
    assert [round_distance(d) for d in (0.4, 1.6, 3.4, 9.6, 12.4, 37.0, 250.0)] == [
        (1, "one"), (2, "exact"), (3, "exact"), (10, "about"), (10, "about"), (40, "about"), (100, "over")]
    assert distance_words(3.2) == "3 metres" and distance_words(11.0) == "about 10 metres"
    assert distance_words(1.0) == "1 metre" and distance_words(2.8, "steps") == "4 steps"
    assert distance_words(5.0, "none") == ""
    assert distance_words(3.2, "metres", "fr") == "à 3 mètres" and distance_words(0.9, "metres", "fr") == "à un mètre"
    assert distance_words(14.0, "metres", "de") == "etwa 15 Meter" and distance_words(2.1, "steps", "de") == "3 Schritte"
    assert distance_words(14.0, "metres", "es") == "a unos 15 metros" and distance_words(300, "metres", "es") == \
        "a más de 100 metros"


@pytest.mark.parametrize(("lang", "expected"), [
    ("en", "Car coming at 2 o'clock, 8 metres"),
    ("fr", "Une voiture à 2 heures, à 8 mètres, en approche"),
    ("de", "Auto auf 2 Uhr, 8 Meter, nähert sich"),
    ("es", "Coche a las 2, a 8 metros, acercándose"),
])
def test_clock_style_with_distance_in_every_language(lang: str, expected: str) -> None:
    text = hazard_phrase("car", 1, "right", "near", True, lang, distance_m=8.2, clock=2, distance_unit="metres",
                         direction_style="clock")
    assert text == expected
    # One o'clock is singular where the language says so; very near replaces the number.
    one = hazard_phrase("dog", 1, "right", "very near", True, lang, distance_m=1.0, clock=1,
                        distance_unit="metres", direction_style="clock")
    assert one == {"en": "Dog at 1 o'clock, very near", "fr": "Un chien à 1 heure, très près",
                   "de": "Hund auf 1 Uhr, sehr nah", "es": "Perro a la 1, muy cerca"}[lang]


def test_other_languages_agree_in_number() -> None:
    assert hazard_phrase("person", 3, "ahead", "near", False, "fr") == "Trois personnes devant"
    assert hazard_phrase("horse", 2, "left", "near", False, "fr") == "Deux chevaux à gauche"
    assert hazard_phrase("dog", 2, "right", "near", True, "de") == "Zwei Hunde rechts, nähern sich"
    assert hazard_phrase("dog", 1, "right", "near", True, "de") == "Hund rechts, nähert sich"
    assert hazard_phrase("bus", 2, "ahead", "very near", False, "es") == "Dos autobuses delante, muy cerca"


def test_every_tier_class_is_translated_in_every_language() -> None:
    cfg = HazardConfig()
    for lang in LANGUAGES:
        assert set(cfg.high + cfg.medium + cfg.low) <= translated_labels(lang), lang
    # Words, not the English fallback, and plural forms that differ where the language marks them.
    assert class_name("person", 2, "de") == "Personen" and class_name("fire hydrant", 1, "es") == "boca de incendios"
    assert class_name("train", 2, "es") == "trenes" and class_name("cow", 2, "fr") == "vaches"


def test_unknown_label_falls_back_to_english() -> None:
    assert hazard_phrase("scooter", 2, "ahead", "near", False, "de") == "Zwei scooters voraus"


def test_languages_match_the_speech_config_choices() -> None:
    _, meta, _ = section_fields(SpeechConfig)["language"]
    assert set(meta["choices"]) == set(LANGUAGES)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_notices_exist_and_differ_between_languages(lang: str) -> None:
    for key in NOTICE_KEYS:
        text = notice(key, lang)
        assert text and text[0].isupper()
        if lang != "en":
            assert text != notice(key, "en")
    assert notice("camera_lost", "en") == "Camera lost" and notice("started", "en") == "Assistant ready"
    assert notice("hazards_back", "en") == "Hazard detection back" and notice("captions_back", "fr") == \
        "Descriptions rétablies"


def test_unknown_notice_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="camera_lost"):
        notice("camera_exploded", "en")
