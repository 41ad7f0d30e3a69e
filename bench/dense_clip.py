"""A dense clip for listener figures: a bus coming at the camera, and the view
turning to a new scene every 5 s, made from real photos.

    python bench/dense_clip.py OUT.mp4 [--photos ../shared/data/coco-mini/val2017] [--seconds 30]

Segments of 5 s at 10 fps, 640x480: even segments zoom into ultralytics'
bus.jpg (from ~3x narrower to the whole bus filling the view: the bus
approaches), odd segments show a new real photo (sorted by name, every
``--stride``-th, so the clip is the same on every machine) with a slow push-in
and a little hand shake. Scene cuts are instant, as when the wearer turns.
With ``--still PHOTO`` the clip is one photo for the whole time (a still
scene, hand shake only). Nothing is copied into the repository: the photos
are read where they are.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

W, H, FPS, SEGMENT_S = 640, 480, 10.0, 5.0


def _crop(img: np.ndarray, scale: float, cx: float, cy: float) -> np.ndarray:
    """A W:H crop of ``img`` covering ``scale`` of its largest such crop, centred at (cx, cy) in 0..1."""
    h, w = img.shape[:2]
    base_w = min(w, h * W / H)
    cw, ch = base_w * scale, base_w * scale * H / W
    x0 = min(max(0.0, cx * w - cw / 2), w - cw)
    y0 = min(max(0.0, cy * h - ch / 2), h - ch)
    crop = img[int(y0):int(y0 + ch), int(x0):int(x0 + cw)]
    return cv2.resize(crop, (W, H), interpolation=cv2.INTER_AREA)


def make_clip(out: Path, photos: list[Path], bus: Path, seconds: float = 30.0, still: bool = False) -> int:
    """Write the clip; return its frame count (``still``: the first photo all along)."""
    bus_img = cv2.imread(str(bus))
    if bus_img is None:
        raise SystemExit(f"error: {bus}: cannot read the bus photo")
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (W, H))
    if not writer.isOpened():
        raise SystemExit(f"error: {out}: cannot write a video there")
    rng = np.random.default_rng(0)
    n = int(seconds * FPS)
    per = int(SEGMENT_S * FPS)
    photo_i = 0
    current: np.ndarray | None = None
    for i in range(n):
        seg, k = divmod(i, per)
        u = k / per
        if still:
            if current is None:
                current = cv2.imread(str(photos[0]))
            jitter = rng.normal(0.0, 0.004, 2)
            frame = _crop(current, 1.0, 0.5 + jitter[0], 0.5 + jitter[1])
        elif seg % 2 == 0:
            # The bus approaching: the crop narrows around it (apparent size ~ 1/distance).
            frame = _crop(bus_img, 1.0 / (1.0 + 2.0 * u), 0.5, 0.45)
        else:
            if k == 0:
                current = cv2.imread(str(photos[photo_i % len(photos)]))
                photo_i += 1
            assert current is not None
            jitter = rng.normal(0.0, 0.004, 2)
            frame = _crop(current, 1.0 - 0.1 * u, 0.5 + jitter[0], 0.5 + jitter[1])
        writer.write(frame)
    writer.release()
    return n


def main(argv: list[str] | None = None) -> int:
    """Build the dense clip from the command line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--photos", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
                    / "coco-mini" / "val2017")
    ap.add_argument("--stride", type=int, default=7, help="take every n-th photo (sorted by name)")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--still", type=Path, default=None, help="one photo for the whole clip (a still scene)")
    args = ap.parse_args(argv)
    photos = [args.still] if args.still else sorted(args.photos.glob("*.jpg"))[::max(1, args.stride)]
    if not photos:
        print(f"error: {args.photos}: no .jpg photos (pass --photos DIR)", file=sys.stderr)
        return 2
    from ultralytics.utils import ASSETS

    n = make_clip(args.out, photos, Path(ASSETS) / "bus.jpg", args.seconds, still=args.still is not None)
    print(f"{args.out}: {n} frames, {n / FPS:.0f} s, {W}x{H}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
