"""Phrase templates: warnings and notices in every supported language."""

from __future__ import annotations

import pytest

from assist.config import HazardConfig, SpeechConfig, section_fields
from assist.speech.phrases import LANGUAGES, NOTICE_KEYS, class_name, hazard_phrase, notice, translated_labels


def test_english_examples() -> None:
    assert hazard_phrase("bus", 1, "ahead", "near", True, "en") == "Bus ahead, approaching"
    assert hazard_phrase("car", 1, "left", "very near", False, "en") == "Car on the left, very near"
    assert hazard_phrase("person", 3, "ahead", "near", False, "en") == "Three people ahead"
    assert hazard_phrase("bench", 2, "right", "very near", True, "en") == "Two benches on the right, very near"
    assert hazard_phrase("person", 12, "ahead", "far", False, "en") == "12 people ahead"


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


def test_unknown_notice_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="camera_lost"):
        notice("camera_exploded", "en")
