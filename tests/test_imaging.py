"""normalize_image and read_image: every input becomes 8-bit BGR HxWx3,
C-contiguous, bounded in size; bad files give one-line SourceErrors."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from assist.capture.errors import SourceError
from assist.capture.imaging import normalize_image, read_image
from helpers_data import missing


def check_bgr(img: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    assert img is not None
    assert img.dtype == np.uint8 and img.shape == (*shape, 3) and img.flags["C_CONTIGUOUS"]
    return img


@pytest.mark.parametrize("img", [None, np.zeros((0, 0, 3), np.uint8), np.zeros((0, 5), np.uint8),
                                 np.zeros((4, 0, 3), np.uint8), np.zeros(10, np.uint8),
                                 np.zeros((2, 3, 3, 2), np.uint8), np.array([["a"]])])
def test_unusable_input_gives_none(img):
    assert normalize_image(img, 1280) is None


def test_grayscale_2d_and_single_channel():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    out = check_bgr(normalize_image(gray, 1280), (3, 4))
    assert np.array_equal(out[:, :, 0], gray) and np.array_equal(out[:, :, 2], gray)
    out1 = check_bgr(normalize_image(gray[:, :, None], 1280), (3, 4))
    assert np.array_equal(out1, out)


def test_bgra_drops_alpha_keeps_colour():
    bgra = np.zeros((5, 7, 4), np.uint8)
    bgra[..., 0], bgra[..., 1], bgra[..., 2], bgra[..., 3] = 10, 20, 30, 0
    out = check_bgr(normalize_image(bgra, 1280), (5, 7))
    assert out[0, 0].tolist() == [10, 20, 30]


def test_gray_alpha_two_channels():
    ga = np.zeros((3, 3, 2), np.uint8)
    ga[..., 0], ga[..., 1] = 77, 255
    out = check_bgr(normalize_image(ga, 1280), (3, 3))
    assert out[1, 1].tolist() == [77, 77, 77]


def test_16_bit_is_scaled_not_clipped():
    img = np.array([[0, 256 * 100, 65535]], np.uint16)
    out = check_bgr(normalize_image(img, 1280), (1, 3))
    assert out[0, :, 0].tolist() == [0, 100, 255]


@pytest.mark.parametrize("values,expected", [([0.0, 0.5, 1.0], [0, 128, 255]),  # 0..1 floats
                                             ([0.0, 128.0, 300.0], [0, 128, 255]),  # 0..255 floats, clipped
                                             ([np.nan, np.inf, -1.0], [0, 255, 0])])
def test_float_images(values, expected):
    img = np.array([values], np.float32)
    out = check_bgr(normalize_image(img, 1280), (1, 3))
    assert out[0, :, 1].tolist() == expected


def test_bool_and_wide_int_images():
    out = check_bgr(normalize_image(np.array([[True, False]]), 1280), (1, 2))
    assert out[0, :, 0].tolist() == [255, 0]
    out = check_bgr(normalize_image(np.array([[-5, 100, 1000]], np.int32), 1280), (1, 3))
    assert out[0, :, 0].tolist() == [0, 100, 255]


def test_odd_sizes_are_kept():
    img = np.random.default_rng(0).integers(0, 255, (7, 13, 3), dtype=np.uint8)
    out = check_bgr(normalize_image(img, 1280), (7, 13))
    assert np.array_equal(out, img)
    check_bgr(normalize_image(np.full((1, 1, 3), 9, np.uint8), 1280), (1, 1))


def test_non_contiguous_input_becomes_contiguous():
    img = np.random.default_rng(1).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    view = img[:, ::2]
    assert not view.flags["C_CONTIGUOUS"]
    out = check_bgr(normalize_image(view, 1280), (20, 15))
    assert np.array_equal(out, view)
    rgb_view = img[:, :, ::-1]  # negative strides, as from an RGB->BGR flip
    out = check_bgr(normalize_image(rgb_view, 1280), (20, 30))
    assert np.array_equal(out, rgb_view)


def test_huge_frames_are_downscaled_with_area_averaging():
    # A one-pixel checkerboard: area averaging gives flat grey, nearest or
    # linear sampling would keep (aliased) black and white pixels.
    h, w = 1920, 2560
    board = ((np.indices((h, w)).sum(axis=0) % 2) * 255).astype(np.uint8)
    out = check_bgr(normalize_image(board, 1280), (960, 1280))
    assert abs(float(out.mean()) - 127.5) < 2 and out.std() < 3
    odd = check_bgr(normalize_image(board[:, :2000], 1280), (1229, 1280))  # a non-integer ratio
    assert odd.std() < 20  # nearest sampling: ~127
    tall = np.zeros((5000, 10, 3), np.uint8)
    out = check_bgr(normalize_image(tall, 1000), (1000, 2))  # keeps aspect, never 0 px wide
    assert out.shape[1] >= 1


@settings(max_examples=60, deadline=None)
@given(arrays(dtype=st.sampled_from([np.uint8, np.uint16, np.float32, np.float64, np.int16, np.bool_]),
              shape=st.tuples(st.integers(1, 40), st.integers(1, 40)).flatmap(
                  lambda hw: st.sampled_from([hw, (*hw, 1), (*hw, 3), (*hw, 4)]))),
       st.integers(8, 64))
def test_any_image_gives_bounded_bgr(img, max_side):
    out = normalize_image(img, max_side)
    assert out is not None
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3 and out.flags["C_CONTIGUOUS"]
    assert max(out.shape[:2]) <= max_side and min(out.shape[:2]) >= 1
    h, w = img.shape[:2]
    if max(h, w) <= max_side:
        assert out.shape[:2] == (h, w)


# ---------------------------------------------------------------- read_image
def test_read_16_bit_png(tmp_path: Path):
    p = tmp_path / "deep.png"
    img = np.zeros((6, 8), np.uint16)
    img[:, 4:] = 65535
    img[:, :4] = 256 * 50
    assert cv2.imwrite(str(p), img)
    assert cv2.imread(str(p), cv2.IMREAD_UNCHANGED).dtype == np.uint16  # really a 16-bit file
    out = check_bgr(read_image(p), (6, 8))
    assert out[0, 0].tolist() == [50, 50, 50] and out[0, 7].tolist() == [255, 255, 255]


def test_read_rgba_png(tmp_path: Path):
    p = tmp_path / "alpha.png"
    img = np.zeros((4, 4, 4), np.uint8)
    img[..., 0], img[..., 1], img[..., 2], img[..., 3] = 200, 100, 50, 128
    assert cv2.imwrite(str(p), img)
    out = check_bgr(read_image(p), (4, 4))
    assert out[2, 2].tolist() == [200, 100, 50]


def test_read_grayscale_and_one_pixel(tmp_path: Path):
    p = tmp_path / "gray.png"
    assert cv2.imwrite(str(p), np.full((5, 9), 33, np.uint8))
    assert check_bgr(read_image(p), (5, 9))[0, 0].tolist() == [33, 33, 33]
    p1 = tmp_path / "one.png"
    assert cv2.imwrite(str(p1), np.full((1, 1, 3), 200, np.uint8))
    check_bgr(read_image(p1), (1, 1))


def test_read_image_downscales_when_asked(tmp_path: Path):
    p = tmp_path / "big.jpg"
    assert cv2.imwrite(str(p), np.full((900, 1600, 3), 120, np.uint8))
    check_bgr(read_image(p, max_side_px=800), (450, 800))


def test_read_bus_jpg():
    # Found without importing ultralytics (slow): the photo ships in its wheel.
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or spec.origin is None:
        missing("ultralytics is not installed (pip install -e .)")
    out = check_bgr(read_image(Path(spec.origin).parent / "assets" / "bus.jpg"), (1080, 810))
    assert out.std() > 20  # a real photo


@pytest.mark.parametrize("case", ["missing", "folder", "empty", "corrupt", "truncated", "text"])
def test_bad_image_files_raise_one_line_errors(tmp_path: Path, case: str):
    p = tmp_path / "bad.jpg"
    if case == "folder":
        p.mkdir()
    elif case == "empty":
        p.write_bytes(b"")  # a zero-size image file
    elif case == "corrupt":
        p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    elif case == "truncated":
        ok, buf = cv2.imencode(".png", np.full((50, 50, 3), 128, np.uint8))
        p.write_bytes(buf.tobytes()[:40])
    elif case == "text":
        p = tmp_path / "notes.txt"
        p.write_text("hello, not an image")
    with pytest.raises(SourceError) as info:
        read_image(p)
    msg = str(info.value)
    assert "\n" not in msg and str(p) in msg
    expected = {"missing": "not found", "folder": "--images", "empty": "empty", "corrupt": "cannot decode",
                "truncated": "cannot decode", "text": "cannot decode"}[case]
    assert expected in msg
