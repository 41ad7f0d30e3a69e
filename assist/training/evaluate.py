"""Evaluate a captioner with the standard COCO caption metrics.

    python -m assist.evaluate --captions annotations/captions_val2017.json --images val2017 \\
        --model models/vit-gpt2-image-captioning --limit 500 --out eval.json
    python -m assist.evaluate --captions annotations/captions_val2017.json --predictions preds.json
    python -m assist.evaluate --captions annotations/captions_val2017.json --images val2017 --model detections

Captions every image (or reads precomputed predictions: COCO results format
``[{"image_id": .., "caption": ..}]`` or ``{"image_id": caption}``), scores them
against *all* reference captions of each image with BLEU-1..4, METEOR (when
available), ROUGE-L and CIDEr (see :mod:`assist.training.metrics`), prints a
table and saves metrics and predictions as JSON. This replaces the old
"87 % accuracy", which was no standard metric. ``--model detections`` scores
the descriptions the agent speaks without captioner weights: the real
detector (resolved like the agent does: ASSIST_DETECTOR, hazards.model,
models/) runs on each image and :mod:`assist.describe.from_detections` makes
the sentence.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assist.app import exitcodes
from assist.training.metrics import format_table, score_captions
from assist.training.train import TrainError, load_coco_captions

log = logging.getLogger(__name__)


def load_predictions(path: str | Path) -> dict[int, str]:
    """{image id: caption} from a COCO results list or a plain {id: caption} mapping."""
    p = Path(path)
    if not p.is_file():
        raise TrainError(f"{p}: predictions file not found (pass --predictions PATH)")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        if isinstance(data, dict):
            return {int(k): str(v) for k, v in data.items()}
        return {int(d["image_id"]): str(d["caption"]) for d in data}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise TrainError(f"{p}: not a predictions file ({type(exc).__name__}: {exc}); expected "
                         '[{"image_id": 1, "caption": "..."}] or {"1": "..."}') from None


def predict(model: str | None, files: dict[int, Path], *, batch_size: int, device: str, num_beams: int | None,
            max_new_tokens: int | None, clean: bool, quiet: bool) -> dict[int, str]:
    """Caption every image with the captioner (resolved like the agent does when ``model`` is None)."""
    import cv2
    from tqdm.auto import tqdm

    from assist.config import CaptionConfig
    from assist.describe.caption_text import clean_caption
    from assist.describe.captioner import load_captioner
    from assist.describe.errors import CaptionModelMissing

    cfg = CaptionConfig(device=device)
    if model:
        from assist.training.model_source import missing_folder_message

        missing = missing_folder_message(model)  # not "hf download models/my-captioner"
        if missing is not None:
            raise TrainError(missing, exitcodes.MODEL)
        cfg.model = model
    if num_beams is not None:
        cfg.num_beams = num_beams
    if max_new_tokens is not None:
        cfg.max_new_tokens = max_new_tokens
    try:
        captioner = load_captioner(cfg)
    except CaptionModelMissing as exc:
        raise TrainError(str(exc), exitcodes.MODEL) from None
    preds: dict[int, str] = {}
    ids = list(files)
    for start in tqdm(range(0, len(ids), batch_size), desc="captioning", disable=quiet, dynamic_ncols=True):
        chunk = ids[start:start + batch_size]
        images, kept = [], []
        for i in chunk:
            img = cv2.imread(str(files[i]), cv2.IMREAD_COLOR)
            if img is None:
                log.warning("%s: cannot decode image; scored as an empty caption", files[i])
                preds[i] = ""
                continue
            images.append(img)
            kept.append(i)
        for i, text in zip(kept, captioner.caption_batch(images), strict=True):
            preds[i] = clean_caption(text) if clean else text
    return preds

DETECTIONS_MODEL = "detections"


def predict_from_detections(files: dict[int, Path], *, quiet: bool) -> dict[int, str]:
    """Describe every image from the real detector's detections, as the agent does offline."""
    from tqdm.auto import tqdm

    from assist.capture.errors import SourceError
    from assist.capture.imaging import read_image
    from assist.config import Config
    from assist.describe.from_detections import describe_detections
    from assist.hazards.detector import DetectorModelMissing, YoloDetector, require_detector

    cfg = Config()
    try:
        detector = YoloDetector(require_detector(cfg.hazards), cfg.hazards)
    except DetectorModelMissing as exc:
        raise TrainError(str(exc), exitcodes.MODEL) from None
    preds: dict[int, str] = {}
    for i in tqdm(list(files), desc="describing", disable=quiet, dynamic_ncols=True):
        try:
            # The agent's own image path (EXIF rotation, 16-bit, size cap), so the score is what it would say.
            image = read_image(files[i], cfg.camera.max_side_px)
        except SourceError as exc:
            log.warning("%s: cannot decode image (%s); scored as an empty caption", files[i], exc)
            preds[i] = ""
            continue
        preds[i] = describe_detections(detector.detect(image), ahead_width=cfg.hazards.ahead_width)
    return preds



def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Run the evaluation the CLI describes; returns the saved report (metrics, predictions, settings)."""
    if args.predictions:
        cap_path = Path(args.captions)
        if not cap_path.is_file():
            raise TrainError(f"{cap_path}: captions file not found (pass --captions PATH to a COCO captions JSON)")
        preds_all = load_predictions(args.predictions)
        refs_all: dict[int, list[str]] = {}
        try:
            for a in json.loads(cap_path.read_text(encoding="utf-8"))["annotations"]:
                refs_all.setdefault(int(a["image_id"]), []).append(str(a["caption"]))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise TrainError(f"{cap_path}: not a COCO captions file ({type(exc).__name__}: {exc})") from None
        ids = sorted(i for i in preds_all if i in refs_all)
        if args.limit:
            ids = ids[:args.limit]
        if not ids:
            raise TrainError(f"{args.predictions}: no prediction matches an image id of {cap_path}")
        references = {i: refs_all[i] for i in ids}
        predictions = {i: preds_all[i] for i in ids}
        source = str(args.predictions)
    else:
        if not args.images:
            raise TrainError("--images is required unless --predictions is given")
        data_set = load_coco_captions(args.captions, args.images, args.limit)
        references = data_set.references
        t0 = time.monotonic()
        if args.model == DETECTIONS_MODEL:
            predictions = predict_from_detections(data_set.files, quiet=args.quiet)
        else:
            predictions = predict(args.model, data_set.files, batch_size=args.batch_size, device=args.device,
                                  num_beams=args.num_beams, max_new_tokens=args.max_new_tokens, clean=args.clean,
                                  quiet=args.quiet)
        log.info("captioned %d images in %.1f s", len(predictions), time.monotonic() - t0)
        source = args.model or "caption.model"
    scores = score_captions(references, predictions, with_meteor=not args.no_meteor)
    report = {"metrics": scores, "source": source, "images": len(references),
              "predictions": [{"image_id": i, "caption": predictions[i]} for i in references]}
    if args.out:
        out = Path(args.out)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
        except OSError as exc:
            raise TrainError(f"{out}: cannot write the report ({exc.strerror or exc})") from None
    return report


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m assist.evaluate``."""
    p = argparse.ArgumentParser(prog="python -m assist.evaluate", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--captions", required=True, help="COCO-format captions JSON (the references)")
    p.add_argument("--images", default="", help="folder with the images (not needed with --predictions)")
    p.add_argument("--model", default=None, help="captioner folder or hub id (default: resolved like the agent: "
                   "ASSIST_CAPTIONER, caption.model, models/); 'detections' scores the sentences made from the "
                   "real detector's detections (no captioner)")
    p.add_argument("--predictions", default="", help="score precomputed captions from this JSON instead")
    p.add_argument("--limit", type=int, default=0, help="first N images by id only (0 = all)")
    p.add_argument("--out", default="", help="save metrics and predictions as JSON here")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--num-beams", type=int, default=None, help="beam width (default: caption.num_beams)")
    p.add_argument("--max-new-tokens", type=int, default=None, help="default: caption.max_new_tokens")
    p.add_argument("--clean", action="store_true", help="score the cleaned spoken sentence instead of the raw "
                   "model output (raw is what published numbers use)")
    p.add_argument("--no-meteor", action="store_true", help="skip METEOR (it needs Java or nltk)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: 0 ok, 2 usage or missing files, 4 captioner missing."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.limit < 0 or args.batch_size < 1:
        print("error: --limit must be 0 or more and --batch-size at least 1", file=sys.stderr)
        return exitcodes.USAGE
    try:
        report = evaluate(args)
    except TrainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    print(format_table(report["metrics"]))
    if args.out:
        print(f"saved to {args.out}")
    return exitcodes.OK


if __name__ == "__main__":
    sys.exit(main())
