"""Caption translation with a tiny MarianMT built at test time (real
transformers classes, tiny sizes, a word-level tokenizer saved to a folder and
loaded back through ``from_pretrained`` offline)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from assist.core.events import EventLog, ListSink
from assist.speech.translate import TranslationError, Translator
from helpers_data import require_module

# Importing torch and transformers alone takes several seconds on the shared machines.
pytestmark = pytest.mark.slow

torch = require_module("torch")
transformers = require_module("transformers")

SOURCE_WORDS = ["a", "man", "riding", "bike", "down", "the", "street", "car", "bus", "dog", "person", "near",
                "ahead", "left", "right"]
TARGET_WORDS = ["un", "homme", "voiture", "rue", "chien", "personne"]


def build_tiny_marian(folder: Path, *, favour: str | None) -> Path:
    """Save a tiny MarianMT and its tokenizer to ``folder``.

    ``favour``: a target word whose output bias is raised so greedy decoding
    says it every step (and EOS is never chosen), giving a known, non-empty
    translation; None raises EOS instead, so the model translates to nothing.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import MarianConfig, MarianMTModel, PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for w in SOURCE_WORDS + TARGET_WORDS:
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="</s>")
    cfg = MarianConfig(vocab_size=len(vocab), d_model=16, encoder_layers=1, decoder_layers=1,
                       encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                       max_position_embeddings=64, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
                       forced_eos_token_id=None)
    torch.manual_seed(0)
    model = MarianMTModel(cfg)
    with torch.no_grad():
        bias = model.final_logits_bias
        bias.fill_(-20.0)
        if favour is None:
            bias[0, 1] = 50.0
        else:
            bias[0, vocab[favour]] = 50.0
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("marian")
    return {"voiture": build_tiny_marian(base / "voiture", favour="voiture"),
            "empty": build_tiny_marian(base / "empty", favour=None)}


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _events() -> tuple[EventLog, ListSink]:
    events, sink = EventLog(), ListSink()
    events.add_sink(sink)
    return events, sink


def test_translation_matches_the_model_loaded_by_hand(tiny_models: dict[str, Path]):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    events, sink = _events()
    tr = Translator.create(str(tiny_models["voiture"]), events=events, max_new_tokens=3)
    assert tr is not None
    out = tr.translate("a man riding a bike down the street")
    # The same folder loaded independently and decoded greedily gives the same words.
    tok = AutoTokenizer.from_pretrained(tiny_models["voiture"])
    model = AutoModelForSeq2SeqLM.from_pretrained(tiny_models["voiture"]).eval()
    ids = model.generate(**tok(["a man riding a bike down the street"], return_tensors="pt"), max_new_tokens=3,
                         do_sample=False)
    reference = " ".join(tok.batch_decode(ids, skip_special_tokens=True)[0].split())
    assert out == reference
    assert out.split() == ["voiture"] * 3  # the favoured word, once per generated token
    assert sink.of_type("status", event="translation_ready")[0]["model"] == str(tiny_models["voiture"])


def test_translations_are_cached(tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch):
    tr = Translator.create(str(tiny_models["voiture"]), max_new_tokens=2)
    assert tr is not None
    calls = []
    real = tr._generate
    monkeypatch.setattr(tr, "_generate", lambda text: calls.append(text) or real(text))
    first = tr.translate("a dog near the car")
    assert tr.translate("a  dog near the car ") == first
    assert calls == ["a dog near the car"]


def test_empty_or_failing_translation_keeps_the_original_caption(tiny_models: dict[str, Path],
                                                                  monkeypatch: pytest.MonkeyPatch):
    tr = Translator.create(str(tiny_models["empty"]))
    assert tr is not None
    assert tr._generate("a bus near the street") == ""
    assert tr.translate("a bus near the street") == "a bus near the street"
    ok = Translator.create(str(tiny_models["voiture"]))
    assert ok is not None

    def boom(text: str) -> str:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(ok, "_generate", boom)
    assert ok.translate("a person ahead") == "a person ahead"


def test_disabled_and_missing_models(tmp_path: Path):
    assert Translator.create("") is None
    events, sink = _events()
    missing = tmp_path / "no-such-model"
    assert Translator.create(str(missing), events=events) is None
    # A hub id that is not in the local cache, offline: unavailable, quickly and clearly.
    assert Translator.create("Helsinki-NLP/opus-mt-en-zz-not-cached", events=events) is None
    status = sink.of_type("status", event="translation_unavailable")
    assert len(status) == 2 and "caption.translate_to" in status[0]["text"] and "no-such-model" in status[0]["text"]
    with pytest.raises(TranslationError, match="caption.translate_to: cannot load"):
        Translator.create(str(missing), strict=True)
    a_file = tmp_path / "model.bin"
    a_file.write_bytes(b"\0")
    with pytest.raises(TranslationError, match="is a file"):
        Translator.create(str(a_file), strict=True)
    assert os.environ["HF_HUB_OFFLINE"] == "1"
