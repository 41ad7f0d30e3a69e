"""Standard COCO caption metrics: BLEU-1..4, METEOR, ROUGE-L, CIDEr (CIDEr-D).

These follow the COCO caption evaluation code (pycocoevalcap: ``bleu_scorer.py``,
``rouge.py``, ``cider_scorer.py``) step for step, so numbers are comparable with
published results; tests check them against values that code produced on fixed
examples. Differences, stated plainly:

- Tokenisation: pycocoevalcap runs the Stanford PTB tokenizer (Java) and drops
  punctuation. :func:`ptb_tokenize` is a Python re-implementation of the parts
  that matter for captions (lower-case, split clitics like "'s" and "n't",
  drop punctuation tokens); it matches the Java tokenizer on ordinary captions.
- METEOR is Java (METEOR 1.5) in pycocoevalcap. It is used when pycocoevalcap
  and a ``java`` binary are installed; else nltk's METEOR (a close
  re-implementation) when nltk and its WordNet data are present; otherwise it
  is reported as unavailable, never as a made-up number.
- "CIDEr" here is CIDEr-D, which is what pycocoevalcap's ``Cider`` computes
  (clipped n-gram counts, Gaussian length penalty, sigma 6, x10), with document
  frequencies taken from the references of the evaluated set.
"""

from __future__ import annotations

import logging
import math
import re
import shutil
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

log = logging.getLogger(__name__)

Captions = Mapping[Any, Sequence[str]]

# Punctuation tokens pycocoevalcap's PTBTokenizer removes after tokenising. The
# bracket names are listed in upper case there while the tokenizer runs with
# -lowerCase, so "-lrb-" survives in the reference code; we copy that quirk.
PUNCTUATIONS = {"''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--",
                "...", ";"}
_BRACKETS = {"(": "-lrb-", ")": "-rrb-", "[": "-lsb-", "]": "-rsb-", "{": "-lcb-", "}": "-rcb-"}

_TOKEN_RE = re.compile(
    r"n't\b"  # clitic "n't" (split off as in PTB: "don't" -> "do n't")
    r"|'(?:s|re|ve|ll|d|m)\b"  # clitics 's 're 've 'll 'd 'm
    r"|(?:[a-z]\.){2,}"  # acronyms keep their periods: u.s.
    r"|\d+(?:[.,:]\d+)+[a-z]*"  # numbers with separators stay whole: 1,000 3.5 10:30
    r"|[a-z0-9]+(?:[-&/][a-z0-9]+)*"  # words, keeping inner hyphens and slashes: t-shirt, 1950s
    r"|\.\.\.|--|[^\sa-z0-9]"  # punctuation and any other symbol, one at a time
)


def ptb_tokenize(text: str) -> list[str]:
    """Lower-cased PTB-style tokens of a caption with punctuation removed, as
    pycocoevalcap's Stanford PTBTokenizer + punctuation filter produce them."""
    s = text.replace("\n", " ").lower()
    s = re.sub(r"([a-z])n't\b", r"\1 n't", s)  # "don't" -> "do n't", "can't" -> "ca n't"
    tokens = (_BRACKETS.get(t, t) for t in _TOKEN_RE.findall(s))
    return [t for t in tokens if t not in PUNCTUATIONS and t != '"']


def tokenize_all(captions: Captions) -> dict[Any, list[str]]:
    """{id: [tokenised caption joined by spaces, ...]} for every caption."""
    return {k: [" ".join(ptb_tokenize(c)) for c in v] for k, v in captions.items()}


def _ngrams(words: Sequence[str], n: int = 4) -> Counter[tuple[str, ...]]:
    counts: Counter[tuple[str, ...]] = Counter()
    for k in range(1, n + 1):
        for i in range(len(words) - k + 1):
            counts[tuple(words[i:i + k])] += 1
    return counts


def _check(gts: Captions, res: Captions) -> list[Any]:
    if set(gts) != set(res):
        raise ValueError("references and predictions must cover the same image ids")
    for k in res:
        if len(res[k]) != 1:
            raise ValueError(f"image {k!r}: exactly one predicted caption expected (got {len(res[k])})")
        if not gts[k]:
            raise ValueError(f"image {k!r}: no reference captions")
    return list(gts)


# ------------------------------------------------------------------ BLEU


def bleu(gts: Captions, res: Captions, n: int = 4) -> tuple[list[float], list[list[float]]]:
    """Corpus BLEU-1..n as pycocoevalcap computes it ("closest" reference length),
    plus per-image scores. Inputs are already tokenised (space-separated)."""
    small, tiny = 1e-9, 1e-15
    ids = _check(gts, res)
    testlen_sum = reflen_sum = 0
    guess_sum, correct_sum = [0] * n, [0] * n
    per_image: list[list[float]] = [[] for _ in range(n)]
    for k in ids:
        words = res[k][0].split()
        testlen = len(words)
        counts = _ngrams(words, n)
        maxref: dict[tuple[str, ...], int] = {}
        reflens = []
        for ref in gts[k]:
            rw = ref.split()
            reflens.append(len(rw))
            for g, c in _ngrams(rw, n).items():
                maxref[g] = max(maxref.get(g, 0), c)
        reflen = min((abs(length - testlen), length) for length in reflens)[1]
        guess = [max(0, testlen - i) for i in range(n)]
        correct = [0] * n
        for g, c in counts.items():
            correct[len(g) - 1] += min(maxref.get(g, 0), c)
        testlen_sum += testlen
        reflen_sum += reflen
        score = 1.0
        for i in range(n):
            guess_sum[i] += guess[i]
            correct_sum[i] += correct[i]
            score *= (correct[i] + tiny) / (guess[i] + small)
            per_image[i].append(score ** (1.0 / (i + 1)))
        ratio = (testlen + tiny) / (reflen + small)
        if ratio < 1:
            for i in range(n):
                per_image[i][-1] *= math.exp(1 - 1 / ratio)
    scores = []
    score = 1.0
    for i in range(n):
        score *= (correct_sum[i] + tiny) / (guess_sum[i] + small)
        scores.append(score ** (1.0 / (i + 1)))
    ratio = (testlen_sum + tiny) / (reflen_sum + small)
    if ratio < 1:
        scores = [s * math.exp(1 - 1 / ratio) for s in scores]
    return scores, per_image


# ------------------------------------------------------------------ ROUGE-L


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    if len(a) < len(b):
        a, b = b, a
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b, 1):
            cur[j] = prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1])
        prev = cur
    return prev[-1]


def rouge_l(gts: Captions, res: Captions, beta: float = 1.2) -> tuple[float, list[float]]:
    """Mean ROUGE-L F-measure (beta 1.2, best precision and recall over the references)."""
    ids = _check(gts, res)
    scores = []
    for k in ids:
        cand = res[k][0].split(" ")
        precs, recs = [], []
        for ref in gts[k]:
            rw = ref.split(" ")
            lcs = _lcs(rw, cand)
            precs.append(lcs / len(cand))
            recs.append(lcs / len(rw))
        p, r = max(precs), max(recs)
        scores.append(((1 + beta ** 2) * p * r) / (r + beta ** 2 * p) if p and r else 0.0)
    return (sum(scores) / len(scores) if scores else 0.0), scores


# ------------------------------------------------------------------ CIDEr-D


def cider_d(gts: Captions, res: Captions, n: int = 4, sigma: float = 6.0) -> tuple[float, list[float]]:
    """CIDEr-D as pycocoevalcap's ``Cider``: tf-idf n-gram vectors (idf from the
    references of this set), clipped similarity, Gaussian length penalty, x10."""
    ids = _check(gts, res)
    crefs = [[_ngrams(r.split(), n) for r in gts[k]] for k in ids]
    ctest = [_ngrams(res[k][0].split(), n) for k in ids]
    df: defaultdict[tuple[str, ...], float] = defaultdict(float)
    for refs in crefs:
        for g in {g for ref in refs for g in ref}:
            df[g] += 1
    ref_len = math.log(float(len(crefs))) if crefs else 0.0

    def vec(counts: Counter[tuple[str, ...]]) -> tuple[list[dict[tuple[str, ...], float]], list[float], int]:
        v: list[dict[tuple[str, ...], float]] = [{} for _ in range(n)]
        norm = [0.0] * n
        length = 0
        for g, tf in counts.items():
            i = len(g) - 1
            v[i][g] = float(tf) * (ref_len - math.log(max(1.0, df.get(g, 0.0))))
            norm[i] += v[i][g] ** 2
            if i == 1:  # pycocoevalcap counts the "length" in bigrams
                length += tf
        return v, [math.sqrt(x) for x in norm], length

    scores = []
    for test, refs in zip(ctest, crefs, strict=True):
        vh, nh, lh = vec(test)
        total = [0.0] * n
        for ref in refs:
            vr, nr, lr = vec(ref)
            delta = float(lh - lr)
            for i in range(n):
                val = sum(min(w, vr[i].get(g, 0.0)) * vr[i].get(g, 0.0) for g, w in vh[i].items())
                if nh[i] != 0 and nr[i] != 0:
                    val /= nh[i] * nr[i]
                total[i] += val * math.exp(-(delta ** 2) / (2 * sigma ** 2))
        scores.append(sum(total) / n / len(refs) * 10.0)
    return (sum(scores) / len(scores) if scores else 0.0), scores


# ------------------------------------------------------------------ METEOR


def meteor(gts: Captions, res: Captions) -> tuple[float | None, str]:
    """(score, how) where how names the implementation, or (None, why it is unavailable).

    Inputs are tokenised like the other metrics.
    """
    try:
        from pycocoevalcap.meteor.meteor import Meteor  # the reference (Java METEOR 1.5)
    except ImportError:
        Meteor = None  # noqa: N806
    if Meteor is not None and shutil.which("java"):
        try:
            scorer = Meteor()
            try:
                score, _ = scorer.compute_score({k: list(v) for k, v in gts.items()},
                                                {k: list(v) for k, v in res.items()})
            finally:
                close = getattr(scorer, "close", None)
                if close:
                    close()
            return float(score), "pycocoevalcap METEOR 1.5 (Java)"
        except Exception as exc:  # noqa: BLE001 - fall through to nltk or "unavailable"
            log.warning("pycocoevalcap METEOR failed: %s", exc)
    try:
        from nltk.translate.meteor_score import meteor_score
    except ImportError:
        return None, ("n/a: install nltk and its WordNet data (python -m nltk.downloader wordnet), or pycocoevalcap "
                      "with Java")
    try:
        vals = [meteor_score([r.split() for r in gts[k]], res[k][0].split()) for k in _check(gts, res)]
    except LookupError:
        return None, "n/a: nltk is installed but its WordNet data is not (python -m nltk.downloader wordnet)"
    return (sum(vals) / len(vals) if vals else 0.0), "nltk METEOR (close to, not identical with, METEOR 1.5)"


# ------------------------------------------------------------------ all together

METRIC_NAMES = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr")


def score_captions(references: Captions, predictions: Mapping[Any, str], *,
                   with_meteor: bool = True) -> dict[str, Any]:
    """Every metric for raw (untokenised) captions.

    ``references``: {image id: [reference captions]}; ``predictions``: {image
    id: predicted caption}. Images without a prediction are an error; extra
    predictions are ignored. Returns {"BLEU-1": .., ..., "CIDEr": .., "METEOR":
    float or None, "METEOR_note": str, "images": n}.
    """
    missing = [k for k in references if k not in predictions]
    if missing:
        raise ValueError(f"{len(missing)} images have no predicted caption (first: {missing[0]!r})")
    gts = tokenize_all(references)
    res = tokenize_all({k: [predictions[k]] for k in references})
    b, _ = bleu(gts, res)
    out: dict[str, Any] = {f"BLEU-{i + 1}": b[i] for i in range(4)}
    if with_meteor:
        m, note = meteor(gts, res)
    else:
        m, note = None, "n/a: not computed"
    out["METEOR"] = m
    out["METEOR_note"] = note
    out["ROUGE-L"] = rouge_l(gts, res)[0]
    out["CIDEr"] = cider_d(gts, res)[0]
    out["images"] = len(gts)
    return out


def format_table(scores: Mapping[str, Any]) -> str:
    """A two-column text table of the metrics."""
    lines = [f"{'metric':<9} score", f"{'-' * 9} {'-' * 7}"]
    for name in METRIC_NAMES:
        value = scores.get(name)
        if value is None:
            lines.append(f"{name:<9} {scores.get(name + '_note', 'n/a')}")
        else:
            lines.append(f"{name:<9} {value:.4f}")
    if "images" in scores:
        lines.append(f"({scores['images']} images)")
    return "\n".join(lines)
