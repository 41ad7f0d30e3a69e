"""transformers' no-repeat-n-gram rule on plain token lists.

Shared by both greedy loops (``torch_greedy`` and the torch-free ``ort_greedy``);
it lives in its own module, importing nothing heavy, so the warm ONNX Runtime
path can use it without importing torch.
"""

from __future__ import annotations

from collections.abc import Sequence


def banned_ngram_tokens(ids: Sequence[int], n: int) -> list[int]:
    """Tokens that would repeat an n-gram already in ``ids`` (transformers' NoRepeatNGram rule).

    Every earlier window whose first n-1 tokens equal the last n-1 tokens bans its last token.
    """
    cur = len(ids)
    if n <= 0 or cur < n:
        return []
    prefix = list(ids[cur - n + 1:])
    return [ids[i + n - 1] for i in range(cur - n + 1) if list(ids[i:i + n - 1]) == prefix]
