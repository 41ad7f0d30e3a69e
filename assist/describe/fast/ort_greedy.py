"""The warm ONNX Runtime captioner without PyTorch: the greedy loop in NumPy, the tokenizer from the
``tokenizers`` package, the model settings from the folder's JSON files.

Why: importing torch costs ~700 MB resident (bench/RESULTS.md, fifth pass), and once the ORT graphs are
in the cache nothing in a caption needs it: the image preprocessing is NumPy
(:mod:`assist.describe.fast.preprocess`), the encoder and the decoder steps are ORT sessions
(:class:`assist.describe.fast.onnx_runtime.OrtCaptionModel`), and greedy decoding is an argmax per step.
The loop below is :class:`assist.describe.fast.torch_greedy.FastGenerator` over the same ORT step function,
with the same logits processing in float32 and the same first-index argmax, so the tokens are the same
(``tests/test_fast_caption.py`` compares them in a fresh process that has not imported torch).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from assist.describe.fast.ngram import banned_ngram_tokens
from assist.describe.fast.onnx_runtime import OrtCaptionModel


def process_logits_np(logits: np.ndarray, ids: Sequence[int], *, repetition_penalty: float,
                      no_repeat_ngram_size: int) -> np.ndarray:
    """Repetition penalty then the n-gram ban on float32 logits [vocab], in place, as generate does."""
    if repetition_penalty != 1.0:
        idx = np.array(sorted(set(ids)), dtype=np.int64)
        idx = idx[idx < logits.shape[0]]
        s = logits[idx]
        p = np.float32(repetition_penalty)
        logits[idx] = np.where(s < 0, s * p, s / p)
    banned = banned_ngram_tokens(ids, no_repeat_ngram_size)
    if banned:
        logits[np.array(banned, dtype=np.int64)] = -np.inf
    return logits


class OrtGreedy:
    """``pixel_values`` (NumPy [1, 3, H, W]) -> token ids (NumPy int64 [1, n], start token first, eos last
    when reached) over one cache folder's ORT sessions. No torch anywhere."""

    def __init__(self, om: OrtCaptionModel, *, start_id: int, eos_ids: frozenset[int], max_new_tokens: int,
                 no_repeat_ngram_size: int, repetition_penalty: float, precision: str) -> None:
        self.ort = om
        self.start_id = start_id
        self.eos_ids = eos_ids
        self.max_new_tokens = max_new_tokens
        self.no_repeat_ngram_size = no_repeat_ngram_size
        self.repetition_penalty = repetition_penalty
        self.precision = precision

    def __call__(self, pixel_values: Any) -> np.ndarray:
        """Greedy-decode one image."""
        pv = np.asarray(pixel_values, dtype=np.float32)
        if pv.ndim != 4 or pv.shape[0] != 1:
            raise ValueError(f"fast captioner takes one image [1, 3, H, W], got {tuple(pv.shape)}")
        run = self.ort.session(self.ort.encode(pv), self.max_new_tokens)
        ids = [self.start_id]
        for pos in range(self.max_new_tokens):
            logits = process_logits_np(run(ids[-1], pos), ids, repetition_penalty=self.repetition_penalty,
                                       no_repeat_ngram_size=self.no_repeat_ngram_size)
            token = int(np.argmax(logits))  # first index of the maximum, as torch.argmax
            ids.append(token)
            if token in self.eos_ids:
                break
        return np.array([ids], dtype=np.int64)


_SPECIAL_KEYS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


def _token_text(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) and value else None


class LightTokenizer:
    """Decoding only, from a folder's ``tokenizer.json`` with the ``tokenizers`` package (no transformers).

    transformers' fast tokenizer decodes with the same backend, after registering the special tokens named
    in ``tokenizer_config.json`` / ``special_tokens_map.json`` as special (so ``skip_special_tokens`` drops
    them); that registration is repeated here. Its ``clean_up_tokenization_spaces`` is skipped for BPE
    models, the only kind accepted here (ValueError otherwise: the caller then uses transformers).
    """

    def __init__(self, folder: str | Path) -> None:
        from tokenizers import AddedToken, Tokenizer

        folder = Path(folder)
        self.tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        if type(self.tok.model).__name__ != "BPE":
            raise ValueError(f"tokenizer model {type(self.tok.model).__name__} (only BPE is decoded without "
                             "transformers)")
        special: list[str] = []
        for name in ("tokenizer_config.json", "special_tokens_map.json"):
            try:
                conf = json.loads((folder / name).read_text())
            except (OSError, ValueError):
                continue
            special += [t for t in (_token_text(conf.get(k)) for k in _SPECIAL_KEYS) if t]
            for key in ("additional_special_tokens", "extra_special_tokens"):
                extra = conf.get(key) or []
                special += [t for t in (_token_text(v) for v in (extra.values() if isinstance(extra, dict)
                                                                  else extra)) if t]
            for entry in (conf.get("added_tokens_decoder") or {}).values():
                if isinstance(entry, dict) and entry.get("special") and _token_text(entry):
                    special.append(_token_text(entry))  # type: ignore[arg-type]
        if special:
            self.tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                                         for t in dict.fromkeys(special)])

    def batch_decode(self, ids: Any, skip_special_tokens: bool = False) -> list[str]:
        """Token ids [B, n] -> B strings."""
        return [self.tok.decode([int(t) for t in row], skip_special_tokens=skip_special_tokens)
                for row in np.asarray(ids).reshape(len(ids), -1)]
