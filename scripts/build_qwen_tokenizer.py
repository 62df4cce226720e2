"""Build the Qwen2 / Qwen3 byte-level BPE tokenizer files (vocab.json, merges.txt, tokenizer_config.json).

Why: Z-Image reads prompts with Qwen3-4B, whose tokenizer is Qwen's 151,643-token byte-level BPE plus
the chat's control tokens. The studio loads models offline, so the files ship in
studio/resources/flow_configs/qwen_tokenizer. They are rebuilt here from ``qwen.tiktoken`` (Apache-2.0), the
rank table Alibaba ships in its ``dashscope`` wheel on PyPI: a token's rank is its merge priority, and the
merge that made it is found by running byte-pair encoding on its bytes with only the lower ranks allowed
(the pair left at the end is the merge). Run once; the output is committed.

    pip download --no-deps dashscope==2.0.2 -d /tmp/ds
    python scripts/build_qwen_tokenizer.py /tmp/ds/dashscope-2.0.2-py3-none-any.whl
"""

from __future__ import annotations

import base64
import json
import sys
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "studio" / "resources" / "flow_configs" / "qwen_tokenizer"
RANKS_MEMBER = "dashscope/resources/qwen.tiktoken"
REGULAR_TOKENS = 151643
# Control tokens after the BPE vocabulary, as Qwen3's tokenizer_config.json numbers them; the first 14
# are "special" (never split from text, skipped when decoding).
CONTROL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                  "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
                  "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
                  "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
                  "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>", "<think>", "</think>"]
SPECIAL_COUNT = 14


def read_ranks(text: str) -> dict[bytes, int]:
    ranks = {}
    for line in text.splitlines():
        if line.strip():
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def last_merge(token: bytes, ranks: dict[bytes, int]) -> tuple[bytes, bytes]:
    """The pair BPE joined last to make ``token``: merge the best-ranked pairs below its rank until two remain."""
    limit = ranks[token]
    parts = [token[i:i + 1] for i in range(len(token))]
    while True:
        best, where = None, -1
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and rank < limit and (best is None or rank < best):
                best, where = rank, i
        if best is None:
            break
        parts[where:where + 2] = [parts[where] + parts[where + 1]]
    if len(parts) != 2:
        raise ValueError(f"token {token!r} (rank {limit}) is not one merge of lower-ranked tokens")
    return parts[0], parts[1]


def build(ranks: dict[bytes, int]) -> tuple[dict[str, int], list[str]]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = bytes_to_unicode()

    def printable(b: bytes) -> str:
        return "".join(chars[x] for x in b)

    vocab = {printable(t): r for t, r in sorted(ranks.items(), key=lambda kv: kv[1])}
    merges = []
    for token, _ in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) > 1:
            a, b = last_merge(token, ranks)
            merges.append(f"{printable(a)} {printable(b)}")
    return vocab, merges


def tokenizer_config() -> dict:
    added = {str(REGULAR_TOKENS + i): {"content": c, "lstrip": False, "normalized": False, "rstrip": False,
                                        "single_word": False, "special": i < SPECIAL_COUNT}
             for i, c in enumerate(CONTROL_TOKENS)}
    return {"add_bos_token": False, "add_prefix_space": False, "added_tokens_decoder": added,
            "additional_special_tokens": CONTROL_TOKENS[1:SPECIAL_COUNT], "bos_token": None,
            "clean_up_tokenization_spaces": False, "eos_token": "<|im_end|>", "errors": "replace",
            "model_max_length": 131072, "pad_token": "<|endoftext|>", "split_special_tokens": False,
            "tokenizer_class": "Qwen2Tokenizer", "unk_token": None}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    src = Path(argv[1])
    if src.suffix == ".whl":
        with zipfile.ZipFile(src) as zf:
            text = zf.read(RANKS_MEMBER).decode("utf-8")
    else:
        text = src.read_text("utf-8")
    ranks = read_ranks(text)
    if len(ranks) != REGULAR_TOKENS or sorted(ranks.values()) != list(range(REGULAR_TOKENS)):
        raise SystemExit(f"expected ranks 0..{REGULAR_TOKENS - 1}, read {len(ranks)}: is {src} Qwen's rank table?")
    vocab, merges = build(ranks)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, separators=(",", ":")), "utf-8")
    (OUT / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", "utf-8")
    (OUT / "tokenizer_config.json").write_text(json.dumps(tokenizer_config(), indent=2) + "\n", "utf-8")
    print(f"wrote {len(vocab)} tokens and {len(merges)} merges to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
