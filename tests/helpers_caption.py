"""Tiny real captioners for tests, built offline from configs.

There is no model hub on the development machines, so tests build
transformers models with real classes and tiny sizes (hidden size 32, 32x32
images in 8x8 patches, two layers), save them with a real image processor and
a real tokenizer trained here, and load them back through the ordinary
``from_pretrained`` path, exactly like the real ViT-GPT2 captioner.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

# Caption-like sentences: enough for a byte-level BPE to learn common words.
CORPUS = [
    "a man riding a bike down a street",
    "a dog sitting on a couch in a living room",
    "two people standing next to a bus",
    "a cat lying on a bed",
    "a red bus parked on the side of the road",
    "a woman holding an umbrella in the rain",
    "a group of people walking across a street",
    "a car driving down a city street at night",
    "a plate of food on a table",
    "a dog and a bicycle on a porch",
]

EOS = "<|endoftext|>"


def build_gpt2_tokenizer(corpus: Iterable[str] = CORPUS, vocab_size: int = 320):
    """A GPT-2-style byte-level BPE tokenizer trained on ``corpus`` (eos = pad = bos)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2TokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(list(corpus), vocab_size=vocab_size, min_frequency=1, special_tokens=[EOS],
                            show_progress=False)
    tok = GPT2TokenizerFast(tokenizer_object=bpe._tokenizer, bos_token=EOS, eos_token=EOS, unk_token=EOS)
    tok.pad_token = tok.eos_token  # as in nlpconnect/vit-gpt2-image-captioning
    return tok


def build_tiny_vit_gpt2(out_dir: Path, corpus: Iterable[str] = CORPUS, *, seed: int = 0,
                        vocab_size: int = 320, dropout: float = 0.0) -> Path:
    """Save a tiny ViT-GPT2 VisionEncoderDecoderModel + ViTImageProcessor + tokenizer to ``out_dir``."""
    import torch
    from transformers import (
        GPT2Config,
        VisionEncoderDecoderConfig,
        VisionEncoderDecoderModel,
        ViTConfig,
        ViTImageProcessor,
    )

    tok = build_gpt2_tokenizer(corpus, vocab_size)
    enc = ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                    image_size=32, patch_size=8)
    dec = GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=2, n_positions=64,
                     add_cross_attention=True, is_decoder=True, bos_token_id=tok.bos_token_id,
                     eos_token_id=tok.eos_token_id, resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout)
    cfg = VisionEncoderDecoderConfig.from_encoder_decoder_configs(enc, dec)
    cfg.decoder_start_token_id = tok.bos_token_id
    cfg.pad_token_id = tok.pad_token_id
    cfg.eos_token_id = tok.eos_token_id
    torch.manual_seed(seed)
    model = VisionEncoderDecoderModel(config=cfg)
    proc = ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    proc.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir


def build_tiny_git(out_dir: Path, corpus: Iterable[str] = CORPUS, *, seed: int = 0) -> Path:
    """Save a tiny GIT captioner (GitForCausalLM + CLIP image processor + BERT tokenizer) to ``out_dir``."""
    import torch
    from transformers import BertTokenizer, CLIPImageProcessor, GitConfig, GitForCausalLM, GitProcessor

    words = sorted({w for line in corpus for w in line.lower().split()})
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words])}
    tok = BertTokenizer(vocab=vocab)
    ip = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    proc = GitProcessor(image_processor=ip, tokenizer=tok)
    cfg = GitConfig(
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                       "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=64, bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id,
        pad_token_id=tok.pad_token_id, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(seed)
    model = GitForCausalLM(cfg)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    proc.save_pretrained(out_dir)
    return out_dir


def make_picture(seed: int = 0, size: tuple[int, int] = (48, 64)) -> np.ndarray:
    """A deterministic BGR test picture (blocks of colour, not noise)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((*size, 3), np.uint8)
    for _ in range(6):
        y, x = rng.integers(0, size[0] - 8), rng.integers(0, size[1] - 8)
        img[y:y + rng.integers(8, 24), x:x + rng.integers(8, 32)] = rng.integers(0, 256, 3)
    return img


def teach_caption(model_dir: Path, image_bgr: np.ndarray, caption: str, *, steps: int = 40,
                  lr: float = 1.5e-2) -> None:
    """Over-fit a tiny ViT-GPT2 folder to say ``caption`` for ``image_bgr`` and save it back.

    Tests then know exactly what greedy decoding must produce, which proves the
    whole path (processor, generate, decode) and not just "some string".
    """
    import torch
    from transformers import AutoImageProcessor, AutoTokenizer, VisionEncoderDecoderModel

    torch.manual_seed(0)
    model = VisionEncoderDecoderModel.from_pretrained(model_dir)
    proc = AutoImageProcessor.from_pretrained(model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    pixel_values = proc(images=np.ascontiguousarray(image_bgr[:, :, ::-1]), return_tensors="pt").pixel_values
    labels = tok(caption + tok.eos_token, return_tensors="pt").input_ids
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        loss = model(pixel_values=pixel_values, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    model.save_pretrained(model_dir)
