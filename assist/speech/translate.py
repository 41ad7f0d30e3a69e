"""Caption translation before speaking (``caption.translate_to``).

The captioner speaks English; a user who set ``speech.language = "fr"`` can
name a MarianMT-style model (``Helsinki-NLP/opus-mt-en-fr`` or a local folder
saved with ``save_pretrained``) and captions are translated before they are
queued. Hazard phrases are not translated here: they come from fixed phrase
tables per language, which is faster and never wrong.

Translation is optional, so a model that cannot be loaded degrades to
English captions with a ``status`` event (``translation_unavailable``) rather
than stopping the agent; ``strict=True`` turns that into TranslationError for
callers that want an exit code instead. A translation that fails or comes
out empty returns the original text: a caption in the wrong language beats
silence.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from assist.core.device import pick_device
from assist.core.events import EventLog

log = logging.getLogger(__name__)


class TranslationError(RuntimeError):
    """The translation model cannot be loaded; the message names the fix."""


def _load(model_path_or_id: str) -> tuple[Any, Any]:
    """(tokenizer, model) from a local folder or a hub id, cache first, network only if allowed."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    local = Path(model_path_or_id).expanduser()
    if local.exists():
        if not local.is_dir():
            raise TranslationError(f"caption.translate_to: {local} is a file; give the model folder "
                                   "(with config.json and the tokenizer files)")
        src: str = str(local)
        kwargs: dict[str, Any] = {}
    else:
        src = model_path_or_id
        # Try the local Hugging Face cache first: offline machines then fail
        # fast instead of waiting for network timeouts.
        kwargs = {"local_files_only": True}
    try:
        try:
            tok = AutoTokenizer.from_pretrained(src, **kwargs)
            model = AutoModelForSeq2SeqLM.from_pretrained(src, **kwargs)
        except OSError:
            if not kwargs or os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
                raise
            tok = AutoTokenizer.from_pretrained(src)
            model = AutoModelForSeq2SeqLM.from_pretrained(src)
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TranslationError(
            f"caption.translate_to: cannot load translation model {model_path_or_id!r} ({first[:160]}); "
            "download it where there is internet (e.g. Helsinki-NLP/opus-mt-en-fr) and give its folder, "
            "or set caption.translate_to = \"\"") from None
    return tok, model


class Translator:
    """A loaded seq2seq translation model with a small cache of recent captions."""

    def __init__(self, model: Any, tokenizer: Any, *, name: str = "", max_new_tokens: int = 64, num_beams: int = 1,
                 cache_size: int = 128) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.max_new_tokens = max_new_tokens
        self.num_beams = num_beams
        self.cache_size = cache_size
        self._cache: OrderedDict[str, str] = OrderedDict()
        # generate() is not safe to run twice at once on one model; captions
        # arrive one at a time anyway, so a lock costs nothing.
        self._lock = threading.Lock()

    @classmethod
    def create(cls, model_path_or_id: str, *, events: EventLog | None = None, device: str = "cpu",
               max_new_tokens: int = 64, num_beams: int = 1, strict: bool = False) -> Translator | None:
        """Load the translator ``caption.translate_to`` names; None when it is empty.

        A model that cannot be loaded gives None plus a ``status`` event
        ``translation_unavailable`` (captions stay untranslated), or
        TranslationError with ``strict=True``.
        """
        name = (model_path_or_id or "").strip()
        if not name:
            return None
        try:
            tok, model = _load(name)
        except TranslationError as exc:
            if strict:
                raise
            log.warning("%s", exc)
            if events is not None:
                events.status("translation_unavailable", text=str(exc), model=name)
            return None
        if device == "auto":
            device = pick_device(device, "translation device")
        if device not in ("", "cpu"):
            model = model.to(device)
        if events is not None:
            events.status("translation_ready", text=f"captions are translated with {name}", model=name)
        return cls(model, tok, name=name, max_new_tokens=max_new_tokens, num_beams=num_beams)

    def translate(self, text: str) -> str:
        """``text`` translated (or unchanged when translation fails or comes out empty)."""
        text = " ".join(str(text).split())
        if not text:
            return text
        with self._lock:
            hit = self._cache.get(text)
            if hit is not None:
                self._cache.move_to_end(text)
                return hit
            try:
                out = self._generate(text)
            except Exception as exc:  # noqa: BLE001 - a broken model must not cost the user the caption
                log.warning("translation of %r failed (%s); speaking it untranslated", text[:60], exc)
                return text
            if not out:
                log.debug("translation of %r came out empty; speaking it untranslated", text[:60])
                out = text
            self._cache[text] = out
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            return out

    def _generate(self, text: str) -> str:
        import torch

        device = next(self.model.parameters()).device
        enc = self.tokenizer([text], return_tensors="pt", truncation=True)
        enc = {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        with torch.inference_mode():
            ids = self.model.generate(**enc, max_new_tokens=self.max_new_tokens, num_beams=self.num_beams,
                                      do_sample=False)
        return " ".join(self.tokenizer.batch_decode(ids, skip_special_tokens=True)[0].split())
