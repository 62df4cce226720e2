"""Build the CLIP BPE tokenizer files (vocab.json, merges.txt) that Stable Diffusion uses.

Why: the tokenizer of SD 1.x, 2.x and XL is OpenAI's CLIP BPE vocabulary (49408
tokens). The studio must load checkpoints offline, and a model hub is out of
reach, so the files are rebuilt from ``bpe_simple_vocab_16e6.txt.gz`` as shipped
in the open-clip-torch wheel on PyPI, the same way CLIP's SimpleTokenizer builds
its table. Run once; the output is committed under studio/resources/sd_configs/clip_tokenizer.

    pip download --no-deps open-clip-torch -d /tmp/oc
    python scripts/build_sd_tokenizer.py /tmp/oc/open_clip_torch-*.whl
"""

from __future__ import annotations

import gzip
import json
import sys
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "studio" / "resources" / "sd_configs" / "clip_tokenizer"
VOCAB_MEMBER = "open_clip/bpe_simple_vocab_16e6.txt.gz"


def bytes_to_unicode() -> dict[int, str]:
    """CLIP's reversible byte -> printable unicode map (from openai/CLIP simple_tokenizer.py)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))


def build(bpe_text: str) -> tuple[dict[str, int], list[str]]:
    # CLIP keeps the first 49152 - 256 - 2 merges; the first line of the file is a header.
    merges = bpe_text.split("\n")[1 : 49152 - 256 - 2 + 1]
    byte_chars = list(bytes_to_unicode().values())
    tokens = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m.split()) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, merges


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    src = Path(argv[1])
    if src.suffix == ".whl":
        with zipfile.ZipFile(src) as zf:
            raw = zf.read(VOCAB_MEMBER)
    else:
        raw = src.read_bytes()
    vocab, merges = build(gzip.decompress(raw).decode("utf-8"))
    if len(vocab) != 49408:
        raise SystemExit(f"expected 49408 tokens, built {len(vocab)}: is {src} the CLIP BPE vocabulary?")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    (OUT / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    print(f"wrote {OUT}/vocab.json ({len(vocab)} tokens) and merges.txt ({len(merges)} merges)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
