"""Fine-tune a captioner on a COCO-format captions file.

    python -m assist.train --captions annotations/captions_train2017.json --images train2017 \\
        --model nlpconnect/vit-gpt2-image-captioning --out models/my-captioner --subset 40000 --epochs 4

Every (image, reference caption) pair is one example; ``--subset N`` keeps the
first N images by id (the old model used 40,000). AdamW, cross-entropy with
padding masked (-100), a linear learning-rate schedule with warm-up, progress
bars, a checkpoint at the end of every epoch (model, processor, tokenizer,
optimizer, scheduler, epoch, step, RNG state) and ``--resume`` from one. The
final folder is a normal transformers model folder: point ``caption.model`` (or
``ASSIST_CAPTIONER``) at it.

ViT-GPT2 style ``VisionEncoderDecoderModel`` folders are the main target; other
image-to-text models whose processor takes ``images`` and ``text`` and whose
forward takes ``labels`` (GIT, BLIP) are trained the same way.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import re
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assist.app import exitcodes
from assist.core.device import cuda_available, pick_device

log = logging.getLogger(__name__)

STATE_FILE = "trainer_state.pt"


class TrainError(Exception):
    """A problem the user can fix (missing file, bad option); the CLI prints it as one line."""

    def __init__(self, message: str, code: int = exitcodes.USAGE) -> None:
        super().__init__(message)
        self.code = code


# ------------------------------------------------------------------ data


@dataclass
class CocoCaptions:
    """(image path, caption) pairs from a COCO captions file, plus references per image id."""

    pairs: list[tuple[int, Path, str]]
    references: dict[int, list[str]]
    files: dict[int, Path]
    missing_images: int = 0


def load_coco_captions(captions: str | Path, images: str | Path, subset: int = 0) -> CocoCaptions:
    """Read a COCO captions JSON and keep the images that exist in ``images``.

    ``subset`` > 0 keeps the first N images by id (deterministic). Raises
    TrainError for a missing or malformed file or when no image is found.
    """
    cap_path, img_dir = Path(captions), Path(images)
    if not cap_path.is_file():
        raise TrainError(f"{cap_path}: captions file not found (pass --captions PATH to a COCO captions JSON)")
    if not img_dir.is_dir():
        raise TrainError(f"{img_dir}: image folder not found (pass --images DIR)")
    try:
        data = json.loads(cap_path.read_text(encoding="utf-8"))
        images_list = data["images"]
        anns = data["annotations"]
        id_to_file = {int(im["id"]): str(im["file_name"]) for im in images_list}
        refs: dict[int, list[str]] = {}
        for a in anns:
            refs.setdefault(int(a["image_id"]), []).append(str(a["caption"]).strip())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise TrainError(f"{cap_path}: not a COCO captions file ({type(exc).__name__}: {exc}); it needs "
                         "'images' (id, file_name) and 'annotations' (image_id, caption)") from None
    ids = sorted(i for i in id_to_file if refs.get(i))
    files: dict[int, Path] = {}
    missing = 0
    for i in ids:
        p = img_dir / id_to_file[i]
        if p.is_file():
            files[i] = p
        else:
            missing += 1
        if subset and len(files) >= subset:
            break
    if not files:
        raise TrainError(f"{img_dir}: none of the images named in {cap_path} is there (wrong --images folder?)")
    if missing:
        log.warning("%d images listed in %s are not in %s; skipped", missing, cap_path, img_dir)
    pairs = [(i, files[i], c) for i in files for c in refs[i] if c]
    return CocoCaptions(pairs=pairs, references={i: refs[i] for i in files}, files=files, missing_images=missing)


def read_rgb(path: Path) -> np.ndarray | None:
    """An RGB uint8 image, or None (with a warning) when it cannot be decoded."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        log.warning("%s: cannot decode image; skipped", path)
        return None
    return np.ascontiguousarray(img[:, :, ::-1])


class CaptionBatcher:
    """Turns (image, caption) pairs into model inputs with padding masked in the labels."""

    def __init__(self, processor: Any, tokenizer: Any, kind: str, max_length: int) -> None:
        self.processor = processor
        self.tokenizer = tokenizer
        self.kind = kind
        self.max_length = max_length
        # GPT-2 tokenizers add no end token: append it so the model learns to stop.
        probe = tokenizer("a").input_ids
        eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
        self.suffix = tokenizer.eos_token if (eos is not None and (not probe or probe[-1] != eos)
                                              and tokenizer.eos_token) else ""

    def __call__(self, items: Sequence[tuple[int, Path, str]]) -> dict[str, Any] | None:
        imgs, texts = [], []
        for _, path, caption in items:
            img = read_rgb(path)
            if img is not None:
                imgs.append(img)
                texts.append(caption + self.suffix)
        if not imgs:
            return None
        if self.kind == "vision-encoder-decoder":
            pixel_values = self.processor(images=imgs, return_tensors="pt").pixel_values
            enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                                 return_tensors="pt")
            labels = enc.input_ids.masked_fill(enc.attention_mask == 0, -100)
            return {"pixel_values": pixel_values, "labels": labels}
        enc = self.processor(images=imgs, text=texts, padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="pt")
        batch = dict(enc)
        batch.pop("token_type_ids", None)
        batch["labels"] = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
        return batch


def epoch_batches(n_items: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The shuffled batches of one epoch; the same seed and epoch give the same batches (resume relies on it)."""
    order = list(range(n_items))
    random.Random(seed * 1_000_003 + epoch).shuffle(order)
    return [order[i:i + batch_size] for i in range(0, n_items, batch_size)]


# ------------------------------------------------------------------ model


def load_for_training(path: str) -> tuple[Any, Any, Any, str]:
    """(model, processor, tokenizer, kind) from a folder or hub id; TrainError when it cannot be loaded."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(path)
        kind = config.model_type
        if kind == "vision-encoder-decoder":
            from transformers import AutoImageProcessor, AutoTokenizer, VisionEncoderDecoderModel

            model = VisionEncoderDecoderModel.from_pretrained(path)
            processor = AutoImageProcessor.from_pretrained(path)
            tokenizer = AutoTokenizer.from_pretrained(path)
            if tokenizer.pad_token_id is None:  # GPT-2 has none; nlpconnect uses eos
                tokenizer.pad_token = tokenizer.eos_token
            if model.config.pad_token_id is None:
                model.config.pad_token_id = tokenizer.pad_token_id
            if model.config.decoder_start_token_id is None:
                model.config.decoder_start_token_id = tokenizer.bos_token_id
        else:
            from transformers import AutoModelForImageTextToText, AutoProcessor

            model = AutoModelForImageTextToText.from_pretrained(path)
            processor = AutoProcessor.from_pretrained(path)
            tokenizer = processor.tokenizer
    except Exception as exc:  # noqa: BLE001 - any loader failure is "this model cannot be used"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrainError(f"{path}: cannot load the start model ({first}); pass --model with a local model folder "
                         "or a hub id (needs internet)", exitcodes.MODEL) from None
    return model, processor, tokenizer, kind


def save_model(out: Path, model: Any, processor: Any, tokenizer: Any, kind: str) -> None:
    """save_pretrained of model, processor and tokenizer: a folder caption.model can point at."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    if kind == "vision-encoder-decoder":
        tokenizer.save_pretrained(out)


# ------------------------------------------------------------------ training


@dataclass
class TrainResult:
    """What a run did: per-step losses, steps, where the checkpoints and the final model are."""

    losses: list[float] = field(default_factory=list)
    global_step: int = 0
    epochs_done: int = 0
    checkpoints: list[Path] = field(default_factory=list)
    final_dir: Path | None = None


def find_checkpoint(path: Path) -> Path:
    """A checkpoint folder, or the newest checkpoint under an output folder."""
    if (path / STATE_FILE).is_file():
        return path
    found = _checkpoints(path)
    if not found:
        raise TrainError(f"{path}: no checkpoint here (pass --resume with a checkpoints/<name> folder or the "
                         "--out folder of an earlier run)")
    return found[-1]


def _checkpoints(out: Path) -> list[Path]:
    """Checkpoint folders under ``out/checkpoints``, oldest first (by the global step in their name)."""
    def step(p: Path) -> int:
        m = re.search(r"step(\d+)$", p.name)
        return int(m.group(1)) if m else -1

    return sorted((p.parent for p in out.glob(f"checkpoints/*/{STATE_FILE}")), key=step)


def _device(requested: str) -> str:
    """--device: like everywhere else (assist.core.device), except that an explicit
    cuda without CUDA is an error: a training run silently on the CPU would take days."""
    if requested == "cuda" and not cuda_available():
        raise TrainError("--device cuda: no CUDA device available (use --device cpu)")
    return pick_device(requested, "--device")


def fit_warmup(warmup_steps: int, total_steps: int) -> int:
    """The warm-up to use: as asked, or a tenth of the run when the asked one
    is longer than the whole run (the learning rate would never leave the
    ramp: a run at a fraction of --lr, without a word). Warns when it scales."""
    if warmup_steps <= total_steps:
        return warmup_steps
    scaled = max(1, total_steps // 10)
    log.warning("--warmup-steps %d is more than this run's %d steps: warming up over %d steps instead "
                "(a tenth of the run)", warmup_steps, total_steps, scaled)
    return scaled


def train(args: argparse.Namespace) -> TrainResult:
    """Run fine-tuning as the CLI describes; returns a TrainResult (tests use it directly)."""
    import torch
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    out = Path(args.out)
    device = _device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_coco_captions(args.captions, args.images, args.subset)
    log.info("%d images, %d (image, caption) pairs", len(data.files), len(data.pairs))

    state: dict[str, Any] | None = None
    start_from = args.model
    if args.resume:
        ckpt = find_checkpoint(Path(args.resume))
        state = torch.load(ckpt / STATE_FILE, map_location="cpu", weights_only=False)
        start_from = str(ckpt)
        log.info("resuming from %s (epoch %d, step %d)", ckpt, state["epoch"], state["global_step"])
    elif not start_from:
        raise TrainError("--model is required (a hub id or a local model folder), or --resume a checkpoint")
    else:
        # Decided at once: offline, the hub loaders retry for ~25 s (issue 13).
        from assist.training.model_source import resolve_start_model

        start_from, problem = resolve_start_model(start_from)
        if start_from is None:
            raise TrainError(str(problem), exitcodes.MODEL)
    model, processor, tokenizer, kind = load_for_training(start_from)
    model.to(device)
    batcher = CaptionBatcher(processor, tokenizer, kind, args.max_length)

    steps_per_epoch = math.ceil(len(data.pairs) / args.batch_size)
    # The schedule spans the whole planned run; --max-steps only stops early, so a
    # short run resumed later continues on the same learning-rate curve.
    schedule_steps = state["schedule_steps"] if state else steps_per_epoch * args.epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    warmup = fit_warmup(args.warmup_steps, schedule_steps)  # same args on --resume: the same curve
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, schedule_steps)
    epoch, step_in_epoch, global_step = 0, 0, 0
    result = TrainResult()
    if state:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        epoch, step_in_epoch, global_step = state["epoch"], state["step_in_epoch"], state["global_step"]
        result.losses = list(state.get("losses", []))
        torch.set_rng_state(state["torch_rng"])
        if device == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
    else:
        torch.manual_seed(args.seed)
    result.global_step = global_step
    use_amp = device == "cuda" and args.amp
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)

    def save_checkpoint(name: str) -> Path:
        ckpt = out / "checkpoints" / name
        save_model(ckpt, model, processor, tokenizer, kind)
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "epoch": epoch,
                    "step_in_epoch": step_in_epoch, "global_step": global_step, "schedule_steps": schedule_steps,
                    "losses": result.losses, "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state_all() if device == "cuda" else None,
                    "args": vars(args)}, ckpt / STATE_FILE)
        result.checkpoints.append(ckpt)
        log.info("checkpoint saved: %s", ckpt)
        # A ViT-GPT2 checkpoint with AdamW state is about 3 GB: keep only the newest few.
        if args.keep_checkpoints:
            old = _checkpoints(out)[:-args.keep_checkpoints]
            for p in old:
                shutil.rmtree(p, ignore_errors=True)
        return ckpt

    out.mkdir(parents=True, exist_ok=True)
    log_file = (out / "train_log.jsonl").open("a", encoding="utf-8")
    limit_hit = bool(args.max_steps) and global_step >= args.max_steps
    model.train()
    try:
        while epoch < args.epochs and not limit_hit:
            batches = epoch_batches(len(data.pairs), args.batch_size, args.seed, epoch)[step_in_epoch:]
            loader = torch.utils.data.DataLoader(
                [data.pairs[i] for b in batches for i in b], batch_size=args.batch_size, shuffle=False,
                collate_fn=batcher, num_workers=args.workers,
                # Its own generator: creating a loader must not draw from the global RNG (dropout),
                # or a resumed run would diverge from an uninterrupted one.
                generator=torch.Generator().manual_seed(args.seed + epoch))
            bar = tqdm(loader, desc=f"epoch {epoch + 1}/{args.epochs}", initial=step_in_epoch,
                       total=steps_per_epoch, disable=args.quiet, dynamic_ncols=True)
            for batch in bar:
                step_in_epoch += 1
                global_step += 1
                if batch is not None:  # None: every image of the batch failed to decode
                    value = _train_step(model, batch, device, optimizer, scheduler, scaler, use_amp, amp_dtype,
                                        args.max_grad_norm)
                    if not math.isfinite(value):
                        raise TrainError(f"loss became {value} at step {global_step}; lower --lr",
                                         exitcodes.INTERNAL)
                    result.losses.append(value)
                    lr = scheduler.get_last_lr()[0]
                    bar.set_postfix(loss=f"{value:.3f}", lr=f"{lr:.2e}")
                    log_file.write(json.dumps({"step": global_step, "epoch": epoch + 1, "loss": round(value, 5),
                                               "lr": lr}) + "\n")
                if args.max_steps and global_step >= args.max_steps:
                    limit_hit = True
                    break
            bar.close()
            if step_in_epoch >= steps_per_epoch:
                epoch += 1
                step_in_epoch = 0
                save_checkpoint(f"epoch{epoch}-step{global_step}")
            else:  # stopped inside an epoch by --max-steps: --resume continues from this step
                save_checkpoint(f"step{global_step}")
    finally:
        log_file.close()
    result.global_step = global_step
    result.epochs_done = epoch
    model.eval()
    save_model(out, model, processor, tokenizer, kind)
    result.final_dir = out
    log.info("model saved to %s: set caption.model = %r in config.toml (or ASSIST_CAPTIONER)", out, str(out))
    return result


def _train_step(model: Any, batch: dict[str, Any], device: str, optimizer: Any, scheduler: Any, scaler: Any,
                use_amp: bool, amp_dtype: Any, max_grad_norm: float) -> float:
    """One optimisation step; returns the loss."""
    import torch

    batch = {k: v.to(device) for k, v in batch.items()}
    with torch.autocast(device_type=device, dtype=amp_dtype, enabled=use_amp):
        loss = model(**batch).loss
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if max_grad_norm:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    scaler.step(optimizer)
    scaler.update()
    scheduler.step()
    return float(loss.detach().float().cpu())


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m assist.train``."""
    p = argparse.ArgumentParser(prog="python -m assist.train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--captions", required=True, help="COCO-format captions JSON")
    p.add_argument("--images", required=True, help="folder with the images the captions file names")
    p.add_argument("--model", default="nlpconnect/vit-gpt2-image-captioning",
                   help="start model: hub id or local folder")
    p.add_argument("--out", required=True, help="output folder (final model, checkpoints/, train_log.jsonl)")
    p.add_argument("--subset", type=int, default=0, help="use the first N images only (0 = all)")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=5e-5, help="peak learning rate (AdamW)")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup-steps", type=int, default=500)
    p.add_argument("--max-length", type=int, default=32, help="longest caption in tokens")
    p.add_argument("--max-grad-norm", type=float, default=1.0, help="gradient clipping, 0 = off")
    p.add_argument("--max-steps", type=int, default=0, help="stop after this many steps in total (0 = no limit); "
                   "the learning-rate schedule still spans --epochs")
    p.add_argument("--keep-checkpoints", type=int, default=2, help="keep the newest N checkpoints (0 = all)")
    p.add_argument("--resume", default="", help="a checkpoint folder, or the --out folder of an earlier run")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True,
                   help="mixed precision on CUDA (bf16 where supported)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch, 0 = torch's default")
    p.add_argument("--workers", type=int, default=0, help="data loader worker processes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _check_args(args: argparse.Namespace) -> None:
    for name in ("epochs", "batch_size", "max_length"):
        if getattr(args, name) < 1:
            raise TrainError(f"--{name.replace('_', '-')}: must be at least 1 (got {getattr(args, name)})")
    for name in ("subset", "warmup_steps", "max_steps", "workers", "threads", "keep_checkpoints"):
        if getattr(args, name) < 0:
            raise TrainError(f"--{name.replace('_', '-')}: must be 0 or more (got {getattr(args, name)})")
    if not args.lr > 0:
        raise TrainError(f"--lr: must be positive (got {args.lr})")


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit code (2 usage/missing files, 4 model cannot be loaded)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        _check_args(args)
        result = train(args)
    except TrainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("interrupted: resume with --resume " + str(args.out), file=sys.stderr)
        return exitcodes.OK
    summary = {"steps": result.global_step, "epochs": result.epochs_done,
               "first_loss": result.losses[0] if result.losses else None,
               "last_loss": result.losses[-1] if result.losses else None,
               "final_model": str(result.final_dir) if result.final_dir else None}
    print(json.dumps(summary))
    return exitcodes.OK


if __name__ == "__main__":
    sys.exit(main())
