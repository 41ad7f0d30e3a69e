"""Golden tests of the scene gate on clips made from real COCO photos.

Clip layout (defaults of tests/helpers_clips.py, 10 fps): each scene rests for
40 frames, pans take 15 frames. With the default config (motion_window_s 0.2,
settle_s 0.8) the view counts as moving up to one frame after a scene's first
frame (that frame is compared with a pan frame 0.2 s earlier), so a scene
starting at frame s fires at s + 1 + 8. The first scene fires at frame 8
(0.8 s of stillness from the first frame). Expected indices are written out
literally: if the gate's timing changes, these tests must say so.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from assist.config import SceneConfig, load_config
from assist.describe.scene_gate import GateDecision, SceneGate, hash_distance, scene_hash
from helpers_clips import (
    FPS,
    Clip,
    brightness_steps,
    concat,
    cuts,
    darkened,
    defocused,
    load_photo,
    noisy,
    pan_tour,
    person_cutout,
    person_walk,
    pick_photos,
    read_video,
    shaken,
    still,
    write_video,
    zoom,
)

OFFSETS = [0, 3, 6, 10]  # each picks a different set of photos from the shared folder


def run_gate(clip: Clip, **overrides: object) -> list[GateDecision]:
    """Every frame of the clip through a fresh gate (config defaults plus overrides)."""
    gate = SceneGate(dataclasses.replace(SceneConfig(), **overrides))
    return [gate.update(f) for f in clip.as_frames()]


def fired(decisions: list[GateDecision]) -> list[tuple[int, str]]:
    """(frame index, reason) of every firing."""
    return [(i, d.reason) for i, d in enumerate(decisions) if d.fire]


@pytest.fixture(scope="module")
def photo_sets(coco_dir: Path) -> dict[int, list[np.ndarray]]:
    """Three different real photos (320x240) per offset."""
    return {off: [load_photo(p) for p in pick_photos(coco_dir, 3, offset=off)] for off in OFFSETS}


@pytest.fixture(scope="module")
def person(coco_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """A real person cut out of a COCO photo, 55 % of the frame height."""
    return person_cutout(coco_dir, height_px=132)


def test_default_config_file_matches_the_dataclass() -> None:
    """config.toml's [scene] holds the same defaults the gate is tested with."""
    assert load_config().scene == SceneConfig()


@pytest.mark.parametrize("offset", OFFSETS)
def test_pan_tour_fires_once_per_scene_after_it_settles(photo_sets: dict, offset: int) -> None:
    clip = pan_tour(photo_sets[offset])
    assert clip.scenes == [(0, 40), (55, 95), (110, 150)]
    ds = run_gate(clip)
    assert fired(ds) == [(8, "first"), (64, "new_scene"), (119, "new_scene")]
    # never during a pan: every pan frame reads as moving
    for a, b in ((40, 55), (95, 110)):
        assert all(d.state == "moving" and not d.fire for d in ds[a:b])
    # motion blur of a pan is not a quality problem: no notice at all
    assert not any(d.quality_changed for d in ds)
    assert ds[64].diff_from_last is not None and ds[64].diff_from_last > SceneConfig().new_scene_threshold


@pytest.mark.parametrize("offset", OFFSETS)
def test_cut_to_a_new_photo_fires_once(photo_sets: dict, offset: int) -> None:
    ds = run_gate(cuts(photo_sets[offset]))
    assert fired(ds) == [(8, "first"), (49, "new_scene"), (89, "new_scene")]


@pytest.mark.parametrize("offset", OFFSETS)
def test_still_scene_for_20_s_fires_once_and_refreshes_only_if_enabled(photo_sets: dict, offset: int) -> None:
    clip = still(photo_sets[offset][0], 20.0)
    assert fired(run_gate(clip)) == [(8, "first")]
    assert fired(run_gate(clip, max_interval_s=6.0)) == [(8, "first"), (68, "refresh"), (128, "refresh"),
                                                         (188, "refresh")]


@pytest.mark.parametrize("min_interval_s, expected", [
    (4.0, [(8, "first"), (49, "new_scene")]),  # scene 2 (settled at 29) and 4 (69) come too soon after a caption
    (0.0, [(8, "first"), (29, "new_scene"), (49, "new_scene"), (69, "new_scene")]),
])
def test_min_interval_debounces(photo_sets: dict, min_interval_s: float, expected: list) -> None:
    photos = photo_sets[0] + photo_sets[3][:1]
    ds = run_gate(cuts(photos, still_s=2.0), min_interval_s=min_interval_s)
    assert fired(ds) == expected


def test_disabled_gate_describes_only_the_first_scene_and_refreshes(photo_sets: dict) -> None:
    clip = cuts(photo_sets[0], still_s=7.0)
    assert fired(run_gate(clip, enabled=False)) == [(8, "first")]
    assert fired(run_gate(clip, enabled=False, max_interval_s=6.0)) == [(8, "first"), (68, "refresh"),
                                                                         (128, "refresh"), (188, "refresh")]


NUISANCES = {
    "brightness_steps_30pct": lambda p, person: brightness_steps(p, 12.0, factors=(1.0, 1.3, 0.7, 1.0, 0.7, 1.3)),
    "gaussian_noise_sigma10": lambda p, person: noisy(p, 12.0, sigma=10.0),
    "shake_3px": lambda p, person: shaken(p, 12.0, amplitude_px=3.0),
    "person_walks_across": lambda p, person: person_walk(p, person, 12.0),
}


@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("kind", sorted(NUISANCES))
def test_nuisances_never_make_a_new_scene(photo_sets: dict, person: tuple, kind: str, offset: int) -> None:
    clip = NUISANCES[kind](photo_sets[offset][1], person)
    ds = run_gate(clip, min_interval_s=0.0)  # no debounce to hide behind
    assert fired(ds) == [(8, "first")]
    assert max(d.diff_from_last for d in ds[9:]) < SceneConfig().new_scene_threshold
    assert not any(d.quality_changed for d in ds)


def test_shake_does_not_keep_the_view_moving(photo_sets: dict) -> None:
    """A shaking hand must still let the scene settle (else nothing would ever be described)."""
    for off in OFFSETS:
        ds = run_gate(shaken(photo_sets[off][2], 6.0, amplitude_px=3.0))
        assert [d.state for d in ds[1:]].count("moving") == 0, off


def test_nuisance_after_a_scene_then_cut_fires_on_the_cut_only(photo_sets: dict, person: tuple) -> None:
    a, b = photo_sets[6][0], photo_sets[6][1]
    clip = concat(noisy(a, 4.0), brightness_steps(a, 4.0), person_walk(a, person, 6.0), shaken(b, 5.0))
    # the cut to b is at frame 140: moving at 140 and 141, still from 142, fires at 149
    assert fired(run_gate(clip)) == [(8, "first"), (149, "new_scene")]


@pytest.mark.parametrize("offset", OFFSETS[:2])
def test_too_dark_never_fires_and_reports_one_transition_each_way(photo_sets: dict, offset: int) -> None:
    clip = concat(darkened(photo_sets[offset][0], 5.0), still(photo_sets[offset][0], 5.0))
    ds = run_gate(clip)
    assert all(not d.fire for d in ds[:50])
    changes = [(i, d.quality) for i, d in enumerate(ds) if d.quality_changed]
    # quality_hold_s 1.0: dark reported at 1.0 s, light back at 5.0 s reported at 6.0 s
    assert changes == [(10, "too_dark"), (60, "ok")]
    assert all(d.quality == "too_dark" for d in ds[10:60])
    # the light comes back on the same view: a brightness change is not motion (contrast normalised),
    # the view has been still all along, so the first lit frame is described at once
    assert fired(ds) == [(50, "first")]


def test_too_blurred_never_fires_and_reports_one_transition(photo_sets: dict) -> None:
    ds = run_gate(defocused(photo_sets[3][1], 6.0))
    assert fired(ds) == []
    # blur is judged only while not moving; frame 0 counts as "just changed", so the verdict
    # starts at frame 1 and is reported quality_hold_s (1.0 s) later
    assert [(i, d.quality) for i, d in enumerate(ds) if d.quality_changed] == [(11, "too_blurred")]


@pytest.mark.parametrize("offset", OFFSETS)
def test_walking_towards_the_view_describes_the_nearer_view_at_most_once_per_interval(
        photo_sets: dict, offset: int) -> None:
    """A zoom is not a pan: phase correlation sees no shift, so the view counts as still and
    the gate describes the nearer view when it differs enough (a user walking forward gets
    descriptions), but never more often than min_interval_s."""
    photo = photo_sets[offset][0]
    z = zoom(photo, 3.0, to=2.5)
    ds = run_gate(concat(still(photo, 4.0), z, still(z.frames[-1], 4.0)))
    fires = fired(ds)
    assert fires[0] == (8, "first") and len(fires) >= 2
    assert all(r == "new_scene" for _, r in fires[1:])
    assert all(b - a >= 40 for (a, _), (b, _) in zip(fires, fires[1:], strict=False))  # 4 s at 10 fps
    assert ds[-1].diff_from_last < SceneConfig().new_scene_threshold  # the final view has been described


def test_frame_rate_does_not_change_the_timing(photo_sets: dict) -> None:
    """At 30 fps the gate fires at the same video times (within a frame) as at 10 fps."""
    slow = fired(run_gate(pan_tour(photo_sets[3], fps=10.0)))
    fast = fired(run_gate(pan_tour(photo_sets[3], fps=30.0)))
    assert [r for _, r in fast] == [r for _, r in slow]
    for (i10, _), (i30, _) in zip(slow, fast, strict=True):
        assert abs(i30 / 30.0 - i10 / 10.0) <= 1 / 10.0 + 1e-9


def test_real_video_file_compression_does_not_fire(photo_sets: dict, tmp_path: Path) -> None:
    """Round trip through mp4v: codec artefacts on still views must not look like motion or change."""
    clip = pan_tour(photo_sets[0])
    frames, fps = read_video(write_video(clip.frames, tmp_path / "tour.mp4", fps=clip.fps))
    assert len(frames) == len(clip) and fps == pytest.approx(10.0)
    ds = run_gate(Clip(frames, fps))
    assert fired(ds) == [(8, "first"), (64, "new_scene"), (119, "new_scene")]


def test_real_video_file_at_640x480_with_noise(coco_dir: Path, tmp_path: Path) -> None:
    photo = load_photo(pick_photos(coco_dir, 1, offset=21)[0], size=(640, 480))
    clip = concat(noisy(photo, 3.0, sigma=6.0), shaken(photo, 3.0, amplitude_px=3.0))
    frames, fps = read_video(write_video(clip.frames, tmp_path / "noisy.mp4", fps=clip.fps))
    assert fired(run_gate(Clip(frames, fps))) == [(8, "first")]


def test_hash_distance_separates_photos_from_their_perturbations(photo_sets: dict) -> None:
    same = [scene_hash_of(p) for p in photo_sets[0]]
    brighter = [scene_hash_of(np.clip(p.astype(np.float32) * 1.3, 0, 255).astype(np.uint8)) for p in photo_sets[0]]
    thr = SceneConfig().new_scene_threshold
    for i in range(3):
        assert hash_distance(same[i], brighter[i]) < thr
        for j in range(3):
            if i != j:
                assert hash_distance(same[i], same[j]) > thr
    flat = np.full((240, 320, 3), 128, np.uint8)
    assert hash_distance(scene_hash_of(flat), scene_hash_of(flat)) == 0.0


def scene_hash_of(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The gate's scene hash of a BGR image (through the gate's own analysis frames)."""
    from assist.describe.scene_gate import analysis_frames

    return scene_hash(analysis_frames(image, 64)[0])


def test_log_fields_are_json_and_free_of_reserved_keys(photo_sets: dict) -> None:
    ds = run_gate(still(photo_sets[0][0], 1.0))
    fields = ds[8].as_log_fields()
    assert fields["fire"] is True and fields["reason"] == "first" and fields["state"] == "still"
    assert not {"t", "type", "frame", "text"} & set(fields)
    json.dumps([d.as_log_fields() for d in ds])
    assert ds[0].diff_from_last is None and ds[9].diff_from_last == 0.0


def test_first_frame_of_a_dark_room_after_time_gap_uses_capture_time(photo_sets: dict) -> None:
    """Time comes from t_capture: frames far apart in time settle after settle_s of their clock, not frame counts."""
    from assist.core.frames import Frame

    gate = SceneGate(SceneConfig())
    photo = photo_sets[0][0]
    d0 = gate.update(Frame(0, 100.0, photo))
    d1 = gate.update(Frame(1, 100.5, photo))
    d2 = gate.update(Frame(2, 100.8, photo))
    assert (d0.fire, d1.fire, d2.fire) == (False, False, True)
    assert d1.state == "settling" and d2.reason == "first"


def walking_clip(photos: list[np.ndarray], seconds: float) -> Clip:
    """A view that never settles, as a worn camera sees a walk: it sweeps along a
    loop of photos, 1 s fast (0.6 widths/s), then 0.3 s slow (0.1 widths/s),
    again and again; the slow moments are far shorter than scene.settle_s."""
    strip = np.concatenate(photos, axis=1)
    w = photos[0].shape[1]
    frames, x = [], 0.0
    for i in range(int(seconds * FPS)):
        speed = 0.6 if (i % 13) < 10 else 0.1
        x += speed * w / FPS
        xi = int(x) % (strip.shape[1] - w)
        frames.append(np.ascontiguousarray(strip[:, xi:xi + w]))
    return Clip(frames)


def test_a_view_that_keeps_moving_is_described_every_walking_refresh(coco_dir: Path) -> None:
    photos = [load_photo(p) for p in pick_photos(coco_dir, 6, offset=1)]
    clip = walking_clip(photos, 40.0)
    decisions = run_gate(clip)
    assert all(d.state != "still" for d in decisions[5:])  # it really never settles
    fires = fired(decisions)
    # the first description comes at startup_s (1.5 s) on the sharpest frame so far, then every walking_refresh_s
    assert [reason for _, reason in fires] == ["startup", "walking_refresh", "walking_refresh"], fires
    startup = decisions[fires[0][0]]
    assert fires[0][0] / FPS == pytest.approx(1.5, abs=0.15)
    described = startup.frame.index if startup.frame is not None else fires[0][0]
    assert described <= fires[0][0]
    assert startup.trigger == "startup" and decisions[fires[1][0]].trigger == "walking"
    first, second = (i / FPS for i, _ in fires[1:])
    assert 16.5 <= first < 18.5 and 31.5 <= second < 34.5  # never sooner than walking_refresh_s
    # without the startup rule the walk waits for walking_refresh_s; with neither it is never described
    assert [r for _, r in fired(run_gate(clip, startup_s=0.0))] == ["walking_refresh", "walking_refresh"]
    assert fired(run_gate(clip, walking_refresh_s=0.0, startup_s=0.0)) == []


def test_startup_describes_the_sharpest_frame_seen_so_far(coco_dir: Path) -> None:
    """Frames blurred by motion, one sharp frame among them: the startup firing picks the sharp one."""
    import cv2

    photos = [load_photo(p) for p in pick_photos(coco_dir, 3, offset=2)]
    clip = walking_clip(photos, 3.0)
    frames = [cv2.blur(f, (9, 1)) for f in clip.frames]  # horizontal motion blur on every frame
    sharp_at = 6
    frames[sharp_at] = clip.frames[sharp_at]
    ds = run_gate(Clip(frames))
    fires = fired(ds)
    assert fires and fires[0][1] == "startup"
    picked = ds[fires[0][0]].frame
    assert picked is not None and picked.index == sharp_at
