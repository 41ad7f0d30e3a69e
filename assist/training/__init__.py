"""Training and evaluation of the captioner, beside (not part of) the runtime.

``train`` fine-tunes the captioner on COCO-style captions (``python -m
assist.train``), ``evaluate`` scores a captioner on held-out images
(``python -m assist.evaluate``; both names are thin shims in ``assist/``),
``metrics`` computes the COCO caption metrics (BLEU, METEOR, ROUGE-L, CIDEr)
as the COCO caption tools do. Nothing in the runtime imports this package.
"""
