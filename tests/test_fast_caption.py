"""The fast captioner against transformers ``generate`` on tiny real ViT-GPT2 models."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from assist.describe.fast import build_fast_generator
from assist.describe.fast.ngram import banned_ngram_tokens
from assist.describe.fast.torch_greedy import unsupported_reason
from helpers_data import require_module

VOCAB = 96
START = 0


def tiny_model(seed: int, *, logit_scale: float = 1.0, attn: str = "sdpa"):
    """A tiny ViT+GPT-2 VisionEncoderDecoderModel with random (seeded) weights.

    ``logit_scale`` multiplies the final layer norm's weight so the logits are less flat than
    random init gives (random init makes nearly every token equally likely).
    """
    from transformers import GPT2Config, VisionEncoderDecoderConfig, VisionEncoderDecoderModel, ViTConfig

    torch.manual_seed(seed)
    enc = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=64)
    dec = GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=32, n_layer=2, n_head=4, add_cross_attention=True,
                     is_decoder=True, bos_token_id=START, eos_token_id=START)
    cfg = VisionEncoderDecoderConfig.from_encoder_decoder_configs(enc, dec)
    cfg._attn_implementation = attn
    model = VisionEncoderDecoderModel(cfg).eval()
    model.config.decoder_start_token_id = START
    model.config.pad_token_id = START
    model.generation_config.decoder_start_token_id = START
    model.generation_config.pad_token_id = START
    model.generation_config.eos_token_id = None
    with torch.no_grad():
        model.decoder.transformer.ln_f.weight.mul_(logit_scale)
    return model


def caption_cfg(**kw) -> SimpleNamespace:
    base = dict(max_new_tokens=12, num_beams=1, repetition_penalty=1.0, no_repeat_ngram_size=0, device="cpu")
    base.update(kw)
    return SimpleNamespace(**base)


def reference(model, pixels: torch.Tensor, cfg: SimpleNamespace) -> list[int]:
    with torch.inference_mode():
        out = model.generate(pixels, max_new_tokens=cfg.max_new_tokens, num_beams=1, do_sample=False,
                             repetition_penalty=cfg.repetition_penalty, no_repeat_ngram_size=cfg.no_repeat_ngram_size)
    return out[0].tolist()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("ngram", [0, 3])
@pytest.mark.parametrize("penalty", [1.0, 1.3])
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_fp32_tokens_identical_to_generate(ngram: int, penalty: float, attn: str) -> None:
    model = tiny_model(1, logit_scale=4.0, attn=attn)
    cfg = caption_cfg(no_repeat_ngram_size=ngram, repetition_penalty=penalty)
    fast = build_fast_generator(model, cfg, precision="fp32")
    assert fast is not None
    gen = torch.Generator().manual_seed(7)
    for _ in range(4):
        pixels = torch.randn(1, 3, 32, 32, generator=gen)
        want = reference(model, pixels, cfg)
        got = fast(pixels)
        assert got.dtype == torch.long and got.shape[0] == 1
        assert got[0].tolist() == want


def test_fp32_stops_at_eos_like_generate() -> None:
    model = tiny_model(2, logit_scale=4.0)
    cfg = caption_cfg(max_new_tokens=16, no_repeat_ngram_size=3)
    pixels = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    free_run = reference(model, pixels, cfg)
    eos = free_run[4]  # a token generate produces mid-caption: make it the end token
    model.generation_config.eos_token_id = eos
    want = reference(model, pixels, cfg)
    assert want[-1] == eos and len(want) < len(free_run)
    fast = build_fast_generator(model, cfg, precision="fp32")
    assert fast is not None
    assert fast(pixels)[0].tolist() == want


def test_flat_logits_still_identical() -> None:
    """Plain random init (near-flat logits, the hardest case for rounding) still matches."""
    model = tiny_model(3)
    cfg = caption_cfg(no_repeat_ngram_size=3)
    fast = build_fast_generator(model, cfg, precision="fp32")
    assert fast is not None
    for seed in range(3):
        pixels = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
        assert fast(pixels)[0].tolist() == reference(model, pixels, cfg)


def test_unsupported_settings_return_none() -> None:
    model = tiny_model(4)
    assert build_fast_generator(model, caption_cfg(num_beams=4)) is None
    model.generation_config.bad_words_ids = [[5]]
    assert "bad_words_ids" in (unsupported_reason(model, caption_cfg()) or "")
    assert build_fast_generator(model, caption_cfg()) is None


def test_non_gpt2_decoder_returns_none() -> None:
    from transformers import BertConfig, VisionEncoderDecoderConfig, VisionEncoderDecoderModel, ViTConfig

    enc = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                    intermediate_size=64)
    dec = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64,
                     is_decoder=True, add_cross_attention=True)
    model = VisionEncoderDecoderModel(VisionEncoderDecoderConfig.from_encoder_decoder_configs(enc, dec))
    model.config.decoder_start_token_id = 1
    assert build_fast_generator(model, caption_cfg()) is None


def test_int8_runs_and_mostly_agrees() -> None:
    model = tiny_model(5, logit_scale=8.0)
    cfg = caption_cfg(no_repeat_ngram_size=3)
    fast = build_fast_generator(model, cfg, precision="int8")
    exact = build_fast_generator(model, cfg, precision="fp32")
    assert fast is not None and exact is not None
    agree = total = 0
    for seed in range(4):
        pixels = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
        ids = fast(pixels)[0].tolist()
        assert ids[0] == START and len(ids) == cfg.max_new_tokens + 1
        assert all(0 <= t < VOCAB for t in ids)
        ref = exact(pixels)[0].tolist()
        agree += sum(a == b for a, b in zip(ids, ref, strict=True))
        total += len(ref)
    # int8 is approximate; with peaked logits most tokens must still agree (a broken path agrees ~1/VOCAB)
    assert agree / total > 0.5


def test_ngram_ban_rule() -> None:
    assert banned_ngram_tokens([1, 2, 3, 1, 2], 3) == [3]
    assert banned_ngram_tokens([1, 2, 3, 1, 2], 0) == []
    assert banned_ngram_tokens([1, 2], 3) == []
    assert sorted(banned_ngram_tokens([4, 5, 4], 1)) == [4, 4, 5]


def test_static_cache_runner_matches_generate_on_cpu() -> None:
    """The GPU path's arithmetic (static KV cache + mask), run without CUDA graphs in fp32 on the CPU."""
    from assist.describe.fast.cuda import build_static_generator

    model = tiny_model(6, logit_scale=4.0)
    cfg = caption_cfg(no_repeat_ngram_size=3, repetition_penalty=1.3)
    fast = build_static_generator(model, device=torch.device("cpu"), dtype=torch.float32, use_graphs=False,
                                  start_id=START, eos_ids=frozenset(), max_new_tokens=cfg.max_new_tokens,
                                  no_repeat_ngram_size=3, repetition_penalty=1.3)
    for seed in range(3):
        pixels = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
        assert fast(pixels)[0].tolist() == reference(model, pixels, cfg)


# ------------------------------------------------------------------ ONNX Runtime path

ort = require_module("onnxruntime")


@pytest.fixture()
def ort_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSIST_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_ort_fp32_graphs_compute_the_same_step_as_pytorch(ort_cache) -> None:
    """bits=0 builds unquantized graphs: any wiring error (a transposed head, a wrong mask) shows here."""
    from assist.describe.fast import onnx_runtime as fo

    model = tiny_model(3, logit_scale=4.0)
    om = fo.OrtCaptionModel(fo.resolve_cache(model, None, 0), encoder_threads=1, decoder_threads=1)
    exact = build_fast_generator(model, caption_cfg(), precision="fp32")
    torch.manual_seed(5)
    for _ in range(3):
        x = torch.randn(1, 3, 32, 32)
        run = om.session(om.encode(x.numpy()), 12)
        with torch.inference_mode():
            ref = exact._session(exact.encode(x))
            ids = [START]
            for pos in range(12):
                a, b = run(ids[-1], pos), ref(ids[-1], pos).numpy()
                assert abs(a - b).max() < 1e-4, pos
                ids.append(int(b.argmax()))
        cfg = caption_cfg(precision="fp32")
        assert ids == reference(model, x, cfg)  # and the teacher-forced tokens are generate's own


@pytest.mark.parametrize("precision", ["ort-int8", "ort-int4"])
def test_ort_quantized_paths_give_valid_ids_and_agree(ort_cache, precision: str) -> None:
    model = tiny_model(4, logit_scale=6.0)
    cfg = caption_cfg(no_repeat_ngram_size=3)
    fast = build_fast_generator(model, cfg, precision=precision)
    assert fast is not None and fast.precision == precision
    torch.manual_seed(6)
    same = total = 0
    for _ in range(4):
        x = torch.randn(1, 3, 32, 32)
        ids = fast(x)[0].tolist()
        ref = reference(model, x, cfg)
        assert ids[0] == START and len(ids) == len(ref) and all(0 <= t < VOCAB for t in ids)
        same += sum(a == b for a, b in zip(ids[1:], ref[1:], strict=True))
        total += len(ref) - 1
    assert same / total >= 0.75, same / total  # sharpened logits: quantization flips only near-ties


def test_ort_cache_is_reused_without_rebuilding_or_the_model(ort_cache, tmp_path, monkeypatch) -> None:
    from assist.describe.fast import cached_ort_generator
    from assist.describe.fast import onnx_runtime as fo

    model = tiny_model(5, logit_scale=6.0)
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    cfg = caption_cfg(precision="ort-int8", backend="auto")
    assert cached_ort_generator(str(folder), cfg) is None  # nothing built yet
    first = build_fast_generator(model, cfg, source=str(folder))
    built = list((ort_cache / "ort-captioner").iterdir())
    assert len(built) == 1 and fo.cache_ready(built[0])
    # weights live in external .data files (memory-mapped by ORT), not inside the graphs
    for name in ("encoder", "decoder"):
        graph, data = built[0] / f"{name}.onnx", built[0] / f"{name}.onnx.data"
        assert data.stat().st_size > graph.stat().st_size > 0, name
    (built[0] / "decoder.onnx.data").rename(built[0] / "moved.data")  # an incomplete folder is not "ready"
    assert not fo.cache_ready(built[0])
    (built[0] / "moved.data").rename(built[0] / "decoder.onnx.data")

    def no_build(*a, **k):
        raise AssertionError("rebuilt although the cache was ready")

    monkeypatch.setattr(fo, "build_cache", no_build)
    again = cached_ort_generator(str(folder), cfg)  # from the folder path alone: no PyTorch model
    assert again is not None
    x = torch.randn(1, 3, 32, 32)
    assert again(x).tolist() == first(x).tolist()
    # a changed weight file is a different key: the old build is not used for it
    (folder / "config.json").write_text((folder / "config.json").read_text() + " ")
    assert cached_ort_generator(str(folder), cfg) is None


def test_vit_preprocessor_equals_transformers(tmp_path) -> None:
    import numpy as np
    from transformers import ViTImageProcessor

    from assist.describe.fast.preprocess import ViTPreprocessor

    rng = np.random.default_rng(0)
    for kw in ({}, {"size": {"height": 32, "width": 32}, "image_mean": [0.485, 0.456, 0.406],
                    "image_std": [0.229, 0.224, 0.225]}):
        ViTImageProcessor(**kw).save_pretrained(tmp_path)
        ours = ViTPreprocessor.from_folder(tmp_path)
        for shape in ((480, 640, 3), (50, 37, 3)):
            img = rng.integers(0, 256, shape, dtype=np.uint8)
            ref = ViTImageProcessor(**kw)(images=[img], return_tensors="np").pixel_values
            assert np.abs(ours([img]).pixel_values - ref).max() < 1e-5


def test_second_load_starts_from_the_cache_without_the_pytorch_model(ort_cache, tmp_path) -> None:
    import numpy as np

    from assist.config import CaptionConfig
    from assist.describe.captioner import load_captioner
    from helpers_caption import build_tiny_vit_gpt2, make_picture

    folder = build_tiny_vit_gpt2(tmp_path / "tiny")
    cfg = CaptionConfig(model=str(folder), device="cpu", precision="ort-int8")
    cold = load_captioner(cfg)
    assert cold.backend == "fast" and cold._model is None  # built the cache, then dropped the fp32 model
    warm = load_captioner(cfg)
    assert warm.backend == "fast" and warm._model is None
    pics = [make_picture(1), make_picture(2)[:, :, 0], np.zeros((40, 60, 3), np.uint8)]
    assert [warm.caption(p) for p in pics] == [cold.caption(p) for p in pics]
    # the transformers fallback still works: the model is loaded on demand
    assert type(warm.model).__name__ == "VisionEncoderDecoderModel"
    # ... and takes over for good when the torch-free fast path fails mid-run
    light = load_captioner(cfg)
    assert light._light and light._model is None

    def broken(pixel_values):
        raise RuntimeError("ORT session lost")

    light._fast = broken
    slow = load_captioner(CaptionConfig(model=str(folder), device="cpu", backend="transformers"))
    assert light.caption(pics[0]) == slow.caption(pics[0])
    assert light.backend == "transformers" and not light._light and light.caption(pics[1]) == slow.caption(pics[1])


def test_int4_head_with_fp32_rescoring_picks_the_exact_argmax(ort_cache) -> None:
    """The int8 decoder's head is stored in 4 bits; re-scoring its top candidates from the fp32 embedding must
    give exactly the argmax of the fp32 head over the graph's own final hidden state, at every step."""
    import numpy as np
    import onnx
    from transformers import GPT2Config, VisionEncoderDecoderConfig, VisionEncoderDecoderModel, ViTConfig

    from assist.describe.fast import onnx_runtime as fo

    torch.manual_seed(11)
    vocab = 4096  # big enough that 4-bit rounding reorders the raw top candidates
    enc = ViTConfig(image_size=32, patch_size=8, hidden_size=64, num_hidden_layers=1, num_attention_heads=4,
                    intermediate_size=128)
    dec = GPT2Config(vocab_size=vocab, n_positions=32, n_embd=64, n_layer=1, n_head=4, add_cross_attention=True,
                     is_decoder=True, bos_token_id=START, eos_token_id=START)
    model = VisionEncoderDecoderModel(VisionEncoderDecoderConfig.from_encoder_decoder_configs(enc, dec)).eval()
    folder = fo.resolve_cache(model, None, 8)
    heads = [n for n in onnx.load(str(folder / "decoder.onnx"), load_external_data=False).graph.node
             if n.op_type == "MatMulNBits" and any(a.name == "N" and a.i == vocab for a in n.attribute)]
    assert len(heads) == 1 and {a.name: a.i for a in heads[0].attribute}["bits"] == 4
    om = fo.OrtCaptionModel(folder, encoder_threads=1, decoder_threads=1)
    assert om.head_bits == 4 and om.rescore_k == fo.RESCORE_K[4]
    wte = np.load(folder / "wte.npy")
    assert np.array_equal(om.wte[[0, 7, vocab - 1]], wte[[0, 7, vocab - 1]]) and np.array_equal(om.wte[5], wte[5])
    with pytest.raises(IndexError):
        om.wte[vocab]
    raw_wrong = steps = 0
    for i in range(4):
        run = om.session(om.encode(torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(i)).numpy()), 12)
        token = START
        for pos in range(12):
            logits = run(token, pos)
            raw, hidden = run.outputs["logits"].reshape(-1), run.outputs["hf"].reshape(-1)  # the graph's own
            exact = wte @ hidden
            assert np.abs(raw - exact).max() > 0  # the head really is quantized
            assert int(logits.argmax()) == int(exact.argmax()), (i, pos)
            best = np.argsort(exact)[-5:]  # the exact top candidates carry their exact fp32 scores
            assert np.allclose(logits[best], exact[best], rtol=0, atol=1e-5), (i, pos)
            raw_wrong += int(raw.argmax()) != int(exact.argmax())
            steps += 1
            token = int(exact.argmax())
    print(f"raw int4 head argmax wrong in {raw_wrong}/{steps} steps; re-scored: 0")


def test_ort_sessions_use_the_captioner_thread_budget(ort_cache, monkeypatch) -> None:
    """Encoder and decoder get caption.threads (else the caller's torch threads); workers spin only when there
    are workers, and only inside a Run."""
    from assist.describe.fast import onnx_runtime as fo
    from assist.describe.fast import ort_generator

    model = tiny_model(7)
    folder = fo.resolve_cache(model, None, 8)
    om = fo.OrtCaptionModel(folder, encoder_threads=2, decoder_threads=2)
    for s in (om.enc, om.dec):
        so = s.get_session_options()
        assert so.intra_op_num_threads == 2
        assert so.get_session_config_entry("session.intra_op.allow_spinning") == "1"
        assert so.get_session_config_entry("session.force_spinning_stop") == "1"
    one = fo.OrtCaptionModel(folder, encoder_threads=1, decoder_threads=1)
    assert one.dec.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"

    made: list[dict] = []
    real = fo.OrtCaptionModel

    def record(folder, **kw):
        made.append(kw)
        return real(folder, **kw)

    monkeypatch.setattr(fo, "OrtCaptionModel", record)
    meta = {"start_id": START, "eos_ids": []}
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        ort_generator(folder, caption_cfg(threads=0), meta, "ort-int8")
        ort_generator(folder, caption_cfg(threads=1), meta, "ort-int8")
    finally:
        torch.set_num_threads(before)
    assert made == [{"encoder_threads": 2, "decoder_threads": 2}, {"encoder_threads": 1, "decoder_threads": 1}]


@pytest.mark.parametrize("precision", ["ort-int8", "ort-int4", "fp32"])
def test_graphs_built_from_saved_weights_equal_the_in_memory_build(ort_cache, tmp_path, precision: str) -> None:
    """The first-run build from the saved weights (child processes, weights streamed to disk and quantized as
    they are written) computes exactly what the in-memory build from the loaded model computes."""
    import numpy as np

    from assist.describe.fast import onnx_build
    from assist.describe.fast import onnx_runtime as fo

    model = tiny_model(4, logit_scale=6.0)
    model.save_pretrained(tmp_path / "m")
    bits = {"ort-int8": 8, "ort-int4": 4, "fp32": 0}[precision]
    fo.build_cache(model, tmp_path / "a", bits, {"start_id": START, "eos_ids": []})
    meta = {"bits": bits, "head_bits": fo.head_bits(bits), "dims": fo.decoder_dims(model).__dict__,
            "generation": {"start_id": START, "eos_ids": []}, "n_image_tokens": 17}
    config = {"encoder": model.config.encoder.to_dict(), "decoder": model.config.decoder.to_dict()}
    assert onnx_build.build_in_children(str(tmp_path / "m"), tmp_path / "b", bits, meta, config)
    assert fo.cache_ready(tmp_path / "b") and onnx_build.LAST_BUILD["peak_mb"] > 0
    a, b = (fo.OrtCaptionModel(tmp_path / n, encoder_threads=1, decoder_threads=1) for n in "ab")
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    ea, eb = a.encode(x), b.encode(x)
    assert all(np.array_equal(ea[k], eb[k]) for k in ea)
    ra, rb = a.session(ea, 8), b.session(eb, 8)
    for pos in range(8):
        assert np.array_equal(ra(pos % 5, pos), rb(pos % 5, pos)), pos


def test_first_load_builds_from_the_saved_weights_without_the_pytorch_model(ort_cache, tmp_path, monkeypatch) -> None:
    """A cold cache is built in child processes from the folder: the fp32 model is never loaded."""
    from assist.config import CaptionConfig
    from assist.describe.captioner import Captioner, load_captioner
    from helpers_caption import build_tiny_vit_gpt2, make_picture

    folder = build_tiny_vit_gpt2(tmp_path / "tiny")

    def no_model(self, path):
        raise AssertionError("the fp32 model was loaded to build the graphs")

    monkeypatch.setattr(Captioner, "_load", no_model)
    cap = load_captioner(CaptionConfig(model=str(folder), device="cpu", precision="ort-int8"))
    assert cap.backend == "fast" and isinstance(cap.caption(make_picture(1)), str)
    assert len(list((ort_cache / "ort-captioner").iterdir())) == 1


def test_numpy_resize_is_bit_equal_to_torchs_uint8_kernel() -> None:
    """The warm captioner resizes without torch: every pixel must equal torch's antialiased uint8 bilinear
    resize (what transformers' ViT processor calls), down, up and along one axis only."""
    import numpy as np

    from assist.describe.fast.preprocess import resize_uint8_aa

    rng = np.random.default_rng(3)
    for (h, w), size in [((480, 640), (224, 224)), ((426, 640), (32, 32)), ((7, 9), (32, 32)),
                         ((100, 50), (224, 300)), ((224, 500), (224, 224)), ((333, 224), (224, 224))]:
        img = rng.integers(0, 256, (3, h, w), dtype=np.uint8)
        ref = torch.nn.functional.interpolate(torch.from_numpy(img)[None], size=size, mode="bilinear",
                                              antialias=True, align_corners=False)[0].numpy()
        assert np.array_equal(resize_uint8_aa(img, size), ref), (h, w, size)


_TORCH_FREE_CHILD = """
import json, sys
import numpy as np
from assist.config import CaptionConfig
from assist.describe.captioner import load_captioner
cfg = CaptionConfig(model=sys.argv[1], device="auto", precision="auto", threads=1,
                    repetition_penalty=float(sys.argv[3]))
c = load_captioner(cfg)
pics = np.load(sys.argv[2], allow_pickle=True)
out = {"backend": c.backend, "light": c._light,
       "ids": [c.generate_ids(c.preprocess([p]))[0].tolist() for p in pics],
       "text": [c.caption(p) for p in pics],
       "torch": "torch" in sys.modules,
       "transformers": sorted(m for m in sys.modules if m == "transformers" or m.startswith("transformers."))}
print(json.dumps(out))
"""


@pytest.mark.slow
def test_warm_captioner_runs_without_torch_and_says_the_same_tokens(ort_cache, tmp_path) -> None:
    """Once the ORT graphs are cached, a fresh process captions without importing torch or transformers, with
    the tokens and text of the torch-based warm path (its generator, torch's resize, transformers' tokenizer)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    import numpy as np
    from transformers import AutoTokenizer, VisionEncoderDecoderModel

    from assist.config import CaptionConfig
    from assist.describe.captioner import load_captioner
    from assist.describe.fast import cached_ort_generator
    from assist.describe.fast.preprocess import ViTPreprocessor
    from helpers_caption import build_tiny_vit_gpt2, make_picture, teach_caption

    taught = build_tiny_vit_gpt2(tmp_path / "taught")
    teach_caption(taught, make_picture(1), "a dog sitting on a couch")
    rng = np.random.default_rng(0)
    pics = [make_picture(1), make_picture(2), make_picture(3, (120, 90)), np.zeros((40, 60, 3), np.uint8),
            rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)]
    pics += [rng.integers(0, 256, (31, 33, 3), dtype=np.uint8) for _ in range(5)]
    np.save(tmp_path / "pics.npy", np.array(pics, dtype=object), allow_pickle=True)
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "tests")])}
    # An untaught model whose logits are sharpened (random init makes them flat: every image would end at once),
    # so its tokens vary from image to image; with a repetition penalty, to compare that rule too.
    sharp = build_tiny_vit_gpt2(tmp_path / "random", seed=3)
    model = VisionEncoderDecoderModel.from_pretrained(sharp)
    with torch.no_grad():
        model.decoder.transformer.ln_f.weight.mul_(6.0)
    model.save_pretrained(sharp)
    seen = set()
    for folder, penalty in ((taught, 1.0), (sharp, 1.3)):
        cfg = CaptionConfig(model=str(folder), device="auto", precision="auto", threads=1,
                            repetition_penalty=penalty)
        load_captioner(cfg)  # the cold path: builds the cache (in child processes)
        # The reference: the warm path as it was, on torch (generator, resize) and transformers (tokenizer).
        gen = cached_ort_generator(str(folder), cfg)
        assert gen is not None
        proc = ViTPreprocessor.from_folder(folder)
        tok = AutoTokenizer.from_pretrained(folder)
        ref_ids, ref_text = [], []
        for p in pics:
            rgb = np.ascontiguousarray(p[:, :, ::-1].transpose(2, 0, 1))
            img = torch.nn.functional.interpolate(torch.from_numpy(rgb)[None], size=proc.size, mode="bilinear",
                                                  antialias=True, align_corners=False)[0].numpy()
            pv = (img.astype(np.float32) * np.float32(proc.rescale_factor) - proc.mean) / proc.std
            ids = gen(torch.from_numpy(pv[None]))
            ref_ids.append(ids[0].tolist())
            ref_text.append(tok.batch_decode(ids, skip_special_tokens=True)[0].strip())
        if folder == taught:
            assert ref_text[0] == "a dog sitting on a couch"  # the reference says what it learned
        run = subprocess.run([sys.executable, "-c", _TORCH_FREE_CHILD, str(folder), str(tmp_path / "pics.npy"),
                              str(penalty)],
                             cwd=root, env=env, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-2000:]
        got = json.loads(run.stdout.strip().splitlines()[-1])
        assert got["backend"] == "fast" and got["light"]
        assert got["torch"] is False and got["transformers"] == [], got
        assert got["ids"] == ref_ids
        assert got["text"] == ref_text
        seen.update(tuple(i) for i in ref_ids)
    # Not vacuous: the taught caption, a full-length sequence through the penalty and the n-gram ban (the tiny
    # models hardly look at the image, so one model says much the same for every picture), an immediate eos.
    assert len(seen) >= 3 and max(len(i) for i in seen) == 17, seen


def test_light_tokenizer_decodes_like_transformers(tmp_path) -> None:
    """Decoding without transformers: the same text for every id sequence, special tokens dropped."""
    import numpy as np

    from assist.describe.fast.ort_greedy import LightTokenizer
    from helpers_caption import build_gpt2_tokenizer

    tok = build_gpt2_tokenizer()
    tok.save_pretrained(tmp_path)
    light = LightTokenizer(tmp_path)
    rng = np.random.default_rng(0)
    eos = tok.eos_token_id
    rows = [tok("a dog sitting on a couch").input_ids + [eos], [eos, *tok(" two people").input_ids, eos, eos], []]
    rows += [rng.integers(0, len(tok), 12).tolist() + [eos] for _ in range(20)]
    for row in rows:
        ids = np.array([row], dtype=np.int64).reshape(1, -1)
        assert light.batch_decode(ids, skip_special_tokens=True) == tok.batch_decode(ids, skip_special_tokens=True)
