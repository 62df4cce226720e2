"""T5 v1.1's tokenizer (the T5-XXL encoder of Flux.1 and SD 3.x), shipped in studio/resources/flow_configs, offline."""

from __future__ import annotations

from functools import lru_cache

from ....resource_files import resource_dir

T5_TOKENIZER_DIR = resource_dir("flow_configs", "t5_tokenizer")


@lru_cache(maxsize=1)
def load_t5_tokenizer():
    """The shared T5TokenizerFast (read once: its tokenizer.json is 2.4 MB); never reaches a model hub."""
    from transformers import T5TokenizerFast

    return T5TokenizerFast.from_pretrained(str(T5_TOKENIZER_DIR), local_files_only=True)
