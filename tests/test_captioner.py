"""The captioner and caption engine with tiny real transformers models, loaded
offline through the ordinary from_pretrained path."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from helpers_data import require_module

torch = require_module("torch")
require_module("transformers")

from assist.config import CaptionConfig, HazardConfig  # noqa: E402
from assist.core.detection import Detection  # noqa: E402
from assist.core.events import EventLog, ListSink  # noqa: E402
from assist.describe import captioner as cap  # noqa: E402
from assist.describe.captioner import (  # noqa: E402
    auto_threads,
    load_captioner,
    resolve_captioner,
)
from assist.describe.engine import CaptionEngine, CaptionResult  # noqa: E402
from assist.describe.errors import CaptionModelMissing  # noqa: E402
from helpers_caption import build_tiny_git, build_tiny_vit_gpt2, make_picture, teach_caption  # noqa: E402

TAUGHT = "a dog sitting on a couch"


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No hub: HF_HUB_OFFLINE=1, no ASSIST_CAPTIONER, an empty models/ folder, an empty HF cache."""
    import huggingface_hub.constants as hf_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.delenv("ASSIST_CAPTIONER", raising=False)
    monkeypatch.setattr(cap, "MODELS_DIR", tmp_path / "models")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def picture() -> np.ndarray:
    return make_picture(1)


@pytest.fixture(scope="module")
def taught_dir(tmp_path_factory: pytest.TempPathFactory, picture: np.ndarray) -> Path:
    """A tiny ViT-GPT2 over-fitted to say TAUGHT for ``picture``."""
    torch.set_num_threads(1)
    d = build_tiny_vit_gpt2(tmp_path_factory.mktemp("vitgpt2") / "tiny-vit-gpt2")
    teach_caption(d, picture, TAUGHT)
    return d


@pytest.fixture(scope="module")
def git_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_git(tmp_path_factory.mktemp("git") / "tiny-git")


def cfg_for(path: Path | str, **kw) -> CaptionConfig:
    return CaptionConfig(model=str(path), device="cpu", **kw)


# ------------------------------------------------------------------ loading and generation


def test_tiny_vit_gpt2_loads_offline_and_says_what_it_learned(taught_dir: Path, picture: np.ndarray) -> None:
    c = load_captioner(cfg_for(taught_dir, backend="transformers"))
    assert c.model_type == "vision-encoder-decoder"
    assert type(c.model).__name__ == "VisionEncoderDecoderModel"
    assert type(c.image_processor).__name__ == "ViTImageProcessor"
    assert c.backend == "transformers"
    assert c.caption(picture) == TAUGHT
    # gray and BGRA frames are accepted too (USB cameras deliver both)
    assert isinstance(c.caption(picture[:, :, 0]), str)
    assert isinstance(c.caption(np.dstack([picture, np.full(picture.shape[:2], 255, np.uint8)])), str)


def test_the_legacy_feature_extractor_config_of_the_real_model_loads(taught_dir: Path, tmp_path: Path,
                                                                     picture: np.ndarray) -> None:
    """nlpconnect/vit-gpt2-image-captioning ships a 2021 ``ViTFeatureExtractor`` preprocessor config."""
    import shutil

    legacy = tmp_path / "legacy"
    shutil.copytree(taught_dir, legacy)
    (legacy / "preprocessor_config.json").write_text(json.dumps({
        "do_normalize": True, "do_resize": True, "feature_extractor_type": "ViTFeatureExtractor",
        "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "resample": 2, "size": 32}))
    c = load_captioner(cfg_for(legacy, backend="transformers"))
    assert type(c.image_processor).__name__ == "ViTImageProcessor"
    assert c.caption(picture) == TAUGHT


def test_fast_backend_gives_the_same_caption_as_generate(taught_dir: Path, picture: np.ndarray) -> None:
    slow = load_captioner(cfg_for(taught_dir, backend="transformers"))
    auto = load_captioner(cfg_for(taught_dir, backend="auto"))
    assert auto.backend in ("fast", "transformers")  # "fast" when assist.describe.fast.torch_greedy applies
    other = make_picture(7)
    assert auto.caption(picture) == slow.caption(picture) == TAUGHT
    assert auto.caption_batch([picture, other]) == slow.caption_batch([picture, other])


def test_beam_search_and_generation_settings_come_from_config(taught_dir: Path, picture: np.ndarray) -> None:
    c = load_captioner(cfg_for(taught_dir, backend="fast", num_beams=3, max_new_tokens=2,
                               repetition_penalty=1.3, no_repeat_ngram_size=2))
    assert c.backend == "transformers"  # the fast path is greedy only
    kw = c.generation_kwargs()
    assert kw["num_beams"] == 3 and kw["max_new_tokens"] == 2 and kw["do_sample"] is False
    assert kw["repetition_penalty"] == 1.3 and kw["no_repeat_ngram_size"] == 2
    short = c.caption(picture)
    assert TAUGHT.startswith(short) and len(short) < len(TAUGHT)  # cut at 2 tokens
    assert "no_repeat_ngram_size" not in load_captioner(cfg_for(taught_dir, no_repeat_ngram_size=0)).generation_kwargs()


def test_tiny_git_loads_through_the_auto_classes(git_dir: Path, picture: np.ndarray) -> None:
    c = load_captioner(cfg_for(git_dir))
    assert c.model_type == "git"
    assert type(c.model).__name__ == "GitForCausalLM"
    assert c.backend == "transformers"
    words = c.caption(picture).split()
    vocab = set(json.loads((git_dir / "tokenizer.json").read_text())["model"]["vocab"])
    assert words and all(w in vocab for w in words)  # decoded from the model's own vocabulary
    assert len(words) <= c.cfg.max_new_tokens


def test_cpu_threads_follow_config(taught_dir: Path) -> None:
    load_captioner(cfg_for(taught_dir, threads=2, backend="transformers"))
    assert torch.get_num_threads() == 2
    fast = load_captioner(cfg_for(taught_dir, threads=2))  # the ORT sessions get the same budget, without torch
    if fast._light:
        assert fast._fast.ort.enc.get_session_options().intra_op_num_threads == 2
    assert auto_threads(2) == 1 and auto_threads(4) == 3 and auto_threads(16) == 14 and auto_threads(1) == 1


# ------------------------------------------------------------------ resolution


def test_resolution_order_env_then_config_then_models_folder(tmp_path: Path, taught_dir: Path, git_dir: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # caption.model as a local folder
    assert resolve_captioner(cfg_for(taught_dir)) == str(taught_dir)
    # ASSIST_CAPTIONER wins over caption.model
    monkeypatch.setenv("ASSIST_CAPTIONER", str(git_dir))
    assert resolve_captioner(cfg_for(taught_dir)) == str(git_dir)
    monkeypatch.delenv("ASSIST_CAPTIONER")
    # a hub id not in the cache: found in models/<last part of the id>
    models = tmp_path / "models"
    build_tiny_vit_gpt2(models / "vit-gpt2-image-captioning")
    got = resolve_captioner(CaptionConfig(model="nlpconnect/vit-gpt2-image-captioning"))
    assert got == str(models / "vit-gpt2-image-captioning")
    # the env var may also name a folder under models/
    monkeypatch.setenv("ASSIST_CAPTIONER", "someone/vit-gpt2-image-captioning")
    assert resolve_captioner(CaptionConfig(model="nope/missing")) == got


def test_a_hub_id_in_the_hf_cache_is_found_without_network(tmp_path: Path) -> None:
    """Lay out a real hub cache entry (models--org--name/snapshots/<rev>) and resolve it offline."""
    cache = tmp_path / "hf-cache" / "models--org--tiny-captioner"
    rev = "0" * 40
    build_tiny_vit_gpt2(cache / "snapshots" / rev)
    (cache / "refs").mkdir()
    (cache / "refs" / "main").write_text(rev)
    got = resolve_captioner(CaptionConfig(model="org/tiny-captioner"))
    assert got is not None and Path(got) == cache / "snapshots" / rev


def test_nothing_found_offline_is_none_quickly() -> None:
    t0 = time.monotonic()
    assert resolve_captioner(CaptionConfig()) is None  # default hub id, offline, empty models/
    assert time.monotonic() - t0 < 5.0
    with pytest.raises(CaptionModelMissing) as err:
        load_captioner(CaptionConfig())
    msg = str(err.value)
    assert "\n" not in msg
    assert "ASSIST_CAPTIONER" in msg and "models/vit-gpt2-image-captioning" in msg and "internet" in msg


def test_a_broken_model_folder_is_reported_as_missing(tmp_path: Path) -> None:
    bad = tmp_path / "broken"
    bad.mkdir()
    (bad / "config.json").write_text("{ not json")
    with pytest.raises(CaptionModelMissing, match="cannot load"):
        load_captioner(cfg_for(bad))


# ------------------------------------------------------------------ the engine


def test_engine_describes_with_the_captioner_and_grounds_it(taught_dir: Path, picture: np.ndarray) -> None:
    events = EventLog()
    sink = ListSink()
    events.add_sink(sink)
    engine = CaptionEngine.create(cfg_for(taught_dir), events)
    assert engine.mode == "captioner"
    assert sink.of_type("status", event="model_missing") == []
    dog = Detection("dog", 0.9, (0.1, 0.5, 0.3, 0.9))
    couch = Detection("couch", 0.8, (0.0, 0.4, 0.9, 0.95))
    res = engine.describe(picture, [dog, couch])
    assert res == CaptionResult(text="A dog sitting on a couch.", source="captioner", raw=TAUGHT)
    # the detector sees no dog: hedged; a bus close ahead: added
    bus = Detection("bus", 0.9, (0.3, 0.1, 0.7, 0.8))
    res = engine.describe(picture, [couch, bus])
    assert res.text == "Possibly a dog sitting on a couch. A bus close ahead."
    assert res.source == "captioner"
    # no detector information at all: nothing to ground against
    assert engine.describe(picture, None).text == "A dog sitting on a couch."


def test_engine_grounding_can_be_switched_off_and_uses_hazard_settings(taught_dir: Path,
                                                                       picture: np.ndarray) -> None:
    off = CaptionEngine.create(cfg_for(taught_dir, grounding=False), None)
    assert off.describe(picture, []).text == "A dog sitting on a couch."
    hz = HazardConfig(high=["couch"], medium=[])
    engine = CaptionEngine.create(cfg_for(taught_dir), None, hazards=hz)
    chair = Detection("chair", 0.9, (0.4, 0.2, 0.6, 0.9))
    bus = Detection("bus", 0.9, (0.3, 0.1, 0.7, 0.8))
    text = engine.describe(picture, [chair, bus]).text
    assert "bus" not in text  # not a hazard class in this config


def test_missing_model_falls_back_to_detections_with_a_status_event(caplog: pytest.LogCaptureFixture,
                                                                    picture: np.ndarray) -> None:
    events = EventLog()
    sink = ListSink()
    events.add_sink(sink)
    with caplog.at_level("INFO"):
        engine = CaptionEngine.create(CaptionConfig(), events, language="en")
    assert engine.mode == "detections"
    missing = sink.of_type("status", event="model_missing")
    assert len(missing) == 1 and missing[0]["model"] == "captioner"
    assert "ASSIST_CAPTIONER" in missing[0]["text"] and "models/vit-gpt2-image-captioning" in missing[0]["text"]
    # The full how-to is for the log and -v; the console gets the short ``brief`` once (issue 13).
    assert any("ASSIST_CAPTIONER" in r.getMessage() and r.levelname == "INFO" for r in caplog.records)
    assert len(missing[0]["brief"]) < 160
    dets = [Detection("person", 0.9, (0.4, 0.1, 0.6, 0.9)), Detection("person", 0.8, (0.45, 0.2, 0.55, 0.8)),
            Detection("bus", 0.9, (0.75, 0.2, 1.0, 0.7))]
    res = engine.describe(picture, dets)
    # the sentence of assist.describe.from_detections (counts, and the side of a big vehicle off to one side)
    assert res == CaptionResult(text="Two people and a bus on the right.", source="detections", raw=None)
    assert engine.describe(picture, []).text == "Nothing recognisable in view."


def test_a_failing_model_call_falls_back_per_call(taught_dir: Path, picture: np.ndarray,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    engine = CaptionEngine.create(cfg_for(taught_dir), None)
    dets = [Detection("car", 0.9, (0.0, 0.3, 0.2, 0.6))]

    def boom(_image: np.ndarray) -> str:
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(engine.captioner, "caption", boom)
    res = engine.describe(picture, dets)
    assert res.source == "detections" and res.text == "A car on the left."
    assert engine.failures == 1
    monkeypatch.undo()
    assert engine.describe(picture, dets).source == "captioner"  # recovers on the next call
    # a corrupt frame: same fallback
    assert engine.describe(np.zeros((0, 0, 3), np.uint8), dets).source == "detections"


def test_an_empty_caption_after_clean_up_falls_back(taught_dir: Path, picture: np.ndarray,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    engine = CaptionEngine.create(cfg_for(taught_dir), None)
    monkeypatch.setattr(engine.captioner, "caption", lambda _img: "a picture of")
    res = engine.describe(picture, [])
    assert res.source == "detections" and res.text == "Nothing recognisable in view."


# ------------------------------------------------------------------ real photo, real detector


def _detect(model, path: Path) -> list[Detection]:
    import cv2

    img = cv2.imread(str(path))
    h, w = img.shape[:2]
    r = model.predict(img, imgsz=320, conf=0.35, verbose=False)[0]
    return [Detection(r.names[int(c)], float(p), (b[0] / w, b[1] / h, b[2] / w, b[3] / h), int(c))
            for b, c, p in zip(r.boxes.xyxy.tolist(), r.boxes.cls.tolist(), r.boxes.conf.tolist(), strict=True)]


@pytest.mark.slow
def test_fallback_on_real_photos_names_what_is_in_them(coco_dir: Path, detector_path: Path) -> None:
    """Without a captioner, real COCO photos through the real detector are described by
    class names that the COCO ground truth confirms are there."""
    yolo = require_module("ultralytics").YOLO
    model = yolo(str(detector_path), task="detect")
    inst = json.loads((coco_dir / "annotations" / "instances_val2017.json").read_text())
    cats = {c["id"]: c["name"] for c in inst["categories"]}
    truth: dict[int, set[str]] = {}
    for a in inst["annotations"]:
        truth.setdefault(a["image_id"], set()).add(cats[a["category_id"]])
    engine = CaptionEngine(CaptionConfig(), None, None)
    for image_id, must in ((423617, {"bus", "car"}), (22192, {"dog"})):
        path = coco_dir / "val2017" / f"{image_id:012d}.jpg"
        dets = _detect(model, path)
        res = engine.describe(np.zeros((8, 8, 3), np.uint8), dets)
        assert res.source == "detections"
        text = res.text.lower()
        for name in must:
            assert name in text, (image_id, res.text)
        named = {d.label for d in dets if d.label.split()[-1] in text}
        assert named and named <= truth[image_id], (res.text, truth[image_id])
