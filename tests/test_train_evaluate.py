"""Fine-tuning and evaluation commands on the real COCO-mini set with a tiny ViT-GPT2."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from helpers_data import require_module

torch = require_module("torch")
require_module("transformers")

from assist.training import evaluate as ev  # noqa: E402
from assist.training import train as tr  # noqa: E402
from assist.training.metrics import METRIC_NAMES  # noqa: E402
from helpers_caption import build_tiny_vit_gpt2  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("ASSIST_CAPTIONER", raising=False)
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def coco(coco_dir: Path) -> dict[str, str]:
    return {"captions": str(coco_dir / "annotations" / "captions_val2017.json"), "images": str(coco_dir / "val2017")}


@pytest.fixture(scope="module")
def start_model(tmp_path_factory: pytest.TempPathFactory, coco: dict[str, str]) -> Path:
    """A tiny ViT-GPT2 whose BPE tokenizer was trained on the COCO-mini captions (dropout on,
    so resuming must restore the RNG too)."""
    caps = [a["caption"] for a in json.loads(Path(coco["captions"]).read_text())["annotations"]]
    return build_tiny_vit_gpt2(tmp_path_factory.mktemp("start") / "tiny", caps, vocab_size=400, dropout=0.1)


def train_args(coco: dict[str, str], model: Path | str, out: Path, *extra: str) -> list[str]:
    return ["--captions", coco["captions"], "--images", coco["images"], "--model", str(model), "--out", str(out),
            "--subset", "4", "--warmup-steps", "0", "--quiet", "--threads", "1", *extra]


def run_train(argv: list[str]) -> tr.TrainResult:
    args = tr.build_parser().parse_args(argv)
    tr._check_args(args)
    return tr.train(args)


@pytest.mark.slow
def test_fine_tuning_lowers_the_training_loss(coco: dict[str, str], start_model: Path, tmp_path: Path) -> None:
    # 4 images x 5 captions = 20 pairs = one batch: every step sees the same data,
    # so the losses are directly comparable.
    out = tmp_path / "run"
    res = run_train(train_args(coco, start_model, out, "--batch-size", "20", "--epochs", "6", "--lr", "3e-3"))
    assert res.global_step == 6 and res.epochs_done == 6 and len(res.losses) == 6
    assert res.losses[-1] < res.losses[0] - 0.3, res.losses
    assert sum(b < a for a, b in zip(res.losses, res.losses[1:], strict=False)) >= 4, res.losses
    # the log has one line per step; only the newest checkpoints are kept
    lines = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2, 3, 4, 5, 6]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["epoch5-step5", "epoch6-step6"]
    # the final folder is a model caption.model can point at
    from assist.config import CaptionConfig
    from assist.describe.captioner import load_captioner

    captioner = load_captioner(CaptionConfig(model=str(out), device="cpu"))
    assert captioner.model_type == "vision-encoder-decoder"
    assert isinstance(captioner.caption(__import__("numpy").zeros((40, 50, 3), "uint8")), str)


@pytest.mark.slow
def test_resume_continues_exactly_where_the_checkpoint_left_off(coco: dict[str, str], start_model: Path,
                                                                tmp_path: Path) -> None:
    common = ("--batch-size", "8", "--epochs", "2", "--lr", "2e-3")  # 20 pairs: 3 steps per epoch
    straight = run_train(train_args(coco, start_model, tmp_path / "a", *common))
    assert straight.global_step == 6
    first = run_train(train_args(coco, start_model, tmp_path / "b", *common, "--max-steps", "4"))
    assert first.global_step == 4 and first.epochs_done == 1
    ckpt = tr.find_checkpoint(tmp_path / "b")
    assert ckpt.name == "step4"
    state = torch.load(ckpt / tr.STATE_FILE, weights_only=False)
    assert (state["epoch"], state["step_in_epoch"], state["global_step"]) == (1, 1, 4)
    assert state["optimizer"]["state"] and state["scheduler"]["last_epoch"] == 4
    torch.manual_seed(12345)  # a fresh process would not share this one's RNG: the checkpoint must restore it
    resumed = run_train(train_args(coco, start_model, tmp_path / "b", *common, "--resume", str(tmp_path / "b")))
    assert resumed.global_step == 6
    assert resumed.losses == pytest.approx(straight.losses, rel=1e-5)
    from transformers import VisionEncoderDecoderModel

    wa = VisionEncoderDecoderModel.from_pretrained(tmp_path / "a").state_dict()
    wb = VisionEncoderDecoderModel.from_pretrained(tmp_path / "b").state_dict()
    for name, tensor in wa.items():
        assert torch.allclose(tensor, wb[name], atol=1e-5), name


@pytest.mark.slow
def test_evaluate_reports_every_metric_and_saves_json(coco: dict[str, str], start_model: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "eval.json"
    rc = ev.main(["--captions", coco["captions"], "--images", coco["images"], "--model", str(start_model),
                  "--limit", "4", "--out", str(out), "--quiet", "--device", "cpu"])
    assert rc == 0
    printed = capsys.readouterr().out
    for name in METRIC_NAMES:
        assert name in printed
    report = json.loads(out.read_text())
    metrics = report["metrics"]
    assert report["images"] == 4 and len(report["predictions"]) == 4
    for name in METRIC_NAMES:
        assert name in metrics
        if name == "METEOR" and metrics[name] is None:
            assert metrics["METEOR_note"].startswith("n/a")
        else:
            assert math.isfinite(metrics[name]) and metrics[name] >= 0.0


def test_evaluate_precomputed_predictions(coco: dict[str, str], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A reference caption used as the prediction scores BLEU 1 against all references."""
    data = json.loads(Path(coco["captions"]).read_text())
    firsts: dict[int, str] = {}
    for a in data["annotations"]:
        firsts.setdefault(a["image_id"], a["caption"])
    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps([{"image_id": i, "caption": c} for i, c in firsts.items()]))
    out = tmp_path / "eval.json"
    rc = ev.main(["--captions", coco["captions"], "--predictions", str(preds), "--out", str(out), "--no-meteor"])
    assert rc == 0
    m = json.loads(out.read_text())["metrics"]
    assert m["images"] == len(firsts)
    assert m["BLEU-1"] == pytest.approx(1.0, abs=1e-6) and m["BLEU-4"] == pytest.approx(1.0, abs=1e-6)
    assert m["ROUGE-L"] == pytest.approx(1.0) and m["CIDEr"] > 2.0
    # a deliberately poor prediction scores far lower
    preds.write_text(json.dumps({str(i): "a photo" for i in firsts}))
    assert ev.main(["--captions", coco["captions"], "--predictions", str(preds), "--out", str(out),
                    "--no-meteor"]) == 0
    assert json.loads(out.read_text())["metrics"]["CIDEr"] < 0.2


@pytest.mark.parametrize("which", ["captions", "images"])
def test_missing_files_are_one_line_errors_with_exit_2(which: str, coco: dict[str, str], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    paths = dict(coco)
    paths[which] = str(tmp_path / "nope")
    for main in (tr.main, ev.main):
        argv = ["--captions", paths["captions"], "--images", paths["images"]]
        argv += ["--out", str(tmp_path / "o")] if main is tr.main else []
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and "nope" in err


def test_bad_inputs_give_clear_errors(coco: dict[str, str], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"images": []}')
    assert tr.main(["--captions", str(bad_json), "--images", coco["images"], "--out", str(tmp_path / "o")]) == 2
    assert "not a COCO captions file" in capsys.readouterr().err
    # a start model that cannot be loaded: exit 4
    empty = tmp_path / "empty-model"
    empty.mkdir()
    assert tr.main(train_args(coco, empty, tmp_path / "o")) == 4
    assert "cannot load the start model" in capsys.readouterr().err
    assert tr.main(train_args(coco, empty, tmp_path / "o", "--epochs", "0")) == 2
    assert tr.main(["--captions", coco["captions"], "--images", coco["images"], "--out", str(tmp_path / "o"),
                    "--resume", str(tmp_path)]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    # evaluate with no captioner anywhere: exit 4 with how to get it
    assert ev.main(["--captions", coco["captions"], "--images", coco["images"], "--model", str(empty),
                    "--quiet"]) == 4


@pytest.mark.slow
def test_the_commands_run_as_modules_without_tracebacks(tmp_path: Path) -> None:
    for module in ("assist.train", "assist.evaluate"):
        proc = subprocess.run([sys.executable, "-m", module, "--captions", str(tmp_path / "missing.json"),
                               "--images", str(tmp_path), "--out", str(tmp_path / "o")],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        assert "missing.json: captions file not found" in proc.stderr
