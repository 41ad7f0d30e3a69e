"""COCO caption metrics against the reference implementation's numbers.

Every expected value below was produced once by the COCO caption evaluation
code itself, pycocoevalcap 1.2 from PyPI (``Bleu(4)``, ``Rouge()``,
``Cider()``, ``Meteor()`` after its Java ``PTBTokenizer``, Java 17), run on
exactly these inputs outside the project; the project does not depend on it.
The tokenizer expectations are the Java PTBTokenizer's output (with
pycocoevalcap's punctuation filter) for these sentences.
"""

from __future__ import annotations

import math

import pytest

from assist.training.metrics import (
    bleu,
    cider_d,
    format_table,
    meteor,
    ptb_tokenize,
    rouge_l,
    score_captions,
    tokenize_all,
)

REFS_1 = {
    1: ["A man riding a bicycle down a city street.", "A person rides a bike on the road.",
        "A cyclist pedals past parked cars.", "A man on a bike in traffic.", "Someone riding a bicycle in the city."],
    2: ["A dog sitting on a couch.", "A brown dog lies on the sofa.", "The dog is resting on a couch at home."],
    3: ["Two people waiting at a bus stop.", "A red bus parked at the curb.", "People stand next to a bus."],
    4: ["A plate of food with broccoli.", "A dinner plate with meat and broccoli."],
}
PRED_1 = {1: "a man riding a bike down a street", 2: "a dog laying on a couch",
          3: "a red bus parked on the side of a street", 4: "a cat on a bed"}
# pycocoevalcap 1.2 on REFS_1 / PRED_1
EXPECTED_1 = {"BLEU": [0.6551724137705113, 0.5369132723704024, 0.40943628658857006, 0.29976782429752774],
              "ROUGE-L": 0.6086685452826527, "CIDEr": 1.2812313924240113, "METEOR": 0.32633069896710004,
              "CIDEr_per_image": [1.6003092566873898, 2.1958948636566014, 1.328721449352054, 0.0],
              "BLEU-4_per_image": [0.4671379775957057, 8.034284186199331e-05, 0.27776190336791945,
                                   1.3910597733719862e-12]}

REFS_2 = {
    "a": ["A giraffe standing next to a tall tree.", "A giraffe eating leaves from a tree.",
          "A tall giraffe in a zoo enclosure."],
    "b": ["A kitchen with a stove and a sink.", "A small kitchen with white cabinets."],
    "c": ["A man holding an umbrella in the rain.", "A person walks with an umbrella on a wet street.",
          "Someone with an umbrella outside."],
}
PRED_2 = {"a": "A giraffe standing next to a tall tree.",  # identical to a reference
          "b": "a kitchen with a stove a sink and a refrigerator and white cabinets",  # long
          "c": "an umbrella"}  # very short: brevity penalty
# pycocoevalcap 1.2 on REFS_2 / PRED_2
EXPECTED_2 = {"BLEU": [0.8695652173534971, 0.8075728530495031, 0.7015398361872717, 0.6335646651315189],
              "ROUGE-L": 0.7423363359103483, "ROUGE-L_per_image": [1.0, 0.696574225122349, 0.5304347826086957],
              "CIDEr": 2.686589751260202, "CIDEr_per_image": [4.216995387793027, 2.18851971806316, 1.65425414792442],
              "METEOR": 0.4589763795540132}

REL = 1e-9


@pytest.mark.parametrize(("refs", "preds", "expected"), [(REFS_1, PRED_1, EXPECTED_1), (REFS_2, PRED_2, EXPECTED_2)])
def test_bleu_rouge_cider_match_pycocoevalcap(refs, preds, expected) -> None:
    gts = tokenize_all(refs)
    res = tokenize_all({k: [v] for k, v in preds.items()})
    b, b_per = bleu(gts, res)
    assert b == pytest.approx(expected["BLEU"], rel=REL)
    r, r_per = rouge_l(gts, res)
    assert r == pytest.approx(expected["ROUGE-L"], rel=REL)
    c, c_per = cider_d(gts, res)
    assert c == pytest.approx(expected["CIDEr"], rel=REL)
    assert c_per == pytest.approx(expected["CIDEr_per_image"], rel=REL)
    if "BLEU-4_per_image" in expected:
        assert b_per[3] == pytest.approx(expected["BLEU-4_per_image"], rel=1e-6)
    if "ROUGE-L_per_image" in expected:
        assert r_per == pytest.approx(expected["ROUGE-L_per_image"], rel=REL)


def test_score_captions_reports_every_metric_from_raw_text() -> None:
    scores = score_captions(REFS_1, PRED_1)
    for i, value in enumerate(EXPECTED_1["BLEU"]):
        assert scores[f"BLEU-{i + 1}"] == pytest.approx(value, rel=REL)
    assert scores["ROUGE-L"] == pytest.approx(EXPECTED_1["ROUGE-L"], rel=REL)
    assert scores["CIDEr"] == pytest.approx(EXPECTED_1["CIDEr"], rel=REL)
    assert scores["images"] == 4
    # METEOR: the reference value when a METEOR implementation is installed, else an honest "n/a"
    if scores["METEOR"] is None:
        assert scores["METEOR_note"].startswith("n/a")
    elif "1.5" in scores["METEOR_note"]:
        assert scores["METEOR"] == pytest.approx(EXPECTED_1["METEOR"], rel=1e-6)
    else:  # nltk's re-implementation: close, not identical
        assert scores["METEOR"] == pytest.approx(EXPECTED_1["METEOR"], abs=0.08)
    table = format_table(scores)
    for name in ("BLEU-1", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr"):
        assert name in table
    assert f"{EXPECTED_1['CIDEr']:.4f}" in table


def test_perfect_and_empty_predictions() -> None:
    refs = {1: ["a b c d e"], 2: ["f g h i j"]}
    gts = tokenize_all(refs)
    perfect = {1: ["a b c d e"], 2: ["f g h i j"]}
    assert bleu(gts, perfect)[0] == pytest.approx([1.0] * 4, rel=1e-9)
    assert rouge_l(gts, perfect)[0] == pytest.approx(1.0)
    empty = {1: [""], 2: [""]}
    assert all(x < 1e-9 for x in bleu(gts, empty)[0])
    assert rouge_l(gts, empty)[0] == 0.0
    assert cider_d(gts, empty)[0] == 0.0


def test_metrics_refuse_mismatched_inputs() -> None:
    gts = {1: ["a b"], 2: ["c d"]}
    with pytest.raises(ValueError, match="same image ids"):
        bleu(gts, {1: ["a b"]})
    with pytest.raises(ValueError, match="exactly one"):
        rouge_l(gts, {1: ["a b", "x"], 2: ["c d"]})
    with pytest.raises(ValueError, match="no predicted caption"):
        score_captions({1: ["a"], 2: ["b"]}, {1: "a"})


@pytest.mark.parametrize(("text", "java"), [
    ("A man's dog doesn't bark.", "a man 's dog does n't bark"),
    ("A t-shirt, a hot-dog and 3.5 pizzas!", "a t-shirt a hot-dog and 3.5 pizzas"),
    ('Two "people" (left) at 10:30 -- waiting...', "two people -lrb- left -rrb- at 10:30 waiting"),
    ("The cat's toy; isn't it cute?", "the cat 's toy is n't it cute"),
    ("A 1,000 piece puzzle & a U.S. flag.", "a 1,000 piece puzzle & a u.s. flag"),
    ("People  can't   see  it's   there", "people ca n't see it 's there"),
    ("A woman's umbrella/handbag in the rain", "a woman 's umbrella/handbag in the rain"),
    ("A model kitchen from the 1950s showing appliances.", "a model kitchen from the 1950s showing appliances"),
])
def test_tokenizer_matches_the_java_ptb_tokenizer(text: str, java: str) -> None:
    assert " ".join(ptb_tokenize(text)) == java


def test_tokenizer_on_all_coco_mini_captions_is_plain_lowercase_words(coco_dir) -> None:
    import json

    caps = json.loads((coco_dir / "annotations" / "captions_val2017.json").read_text())["annotations"]
    for a in caps:
        toks = ptb_tokenize(a["caption"])
        assert toks and all(t == t.lower() and t not in {".", ",", "!", "?", ";", ":"} for t in toks)


def test_meteor_is_a_number_or_an_honest_note() -> None:
    gts = tokenize_all(REFS_2)
    res = tokenize_all({k: [v] for k, v in PRED_2.items()})
    value, note = meteor(gts, res)
    if value is None:
        assert note.startswith("n/a") and "nltk" in note
    else:
        assert math.isfinite(value) and 0.0 <= value <= 1.0
