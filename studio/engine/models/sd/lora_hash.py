"""A LoRA file's short hash as AUTOMATIC1111 writes it in "Lora hashes".

AUTOMATIC1111 (extensions-builtin/Lora/network.py) takes, for a .safetensors file, the
``sshs_model_hash`` its trainer stored in the metadata, else the kohya / additional-networks
hash: SHA-256 over the file after its JSON header (the tensor bytes only, so editing the
metadata keeps the hash); for other files, SHA-256 of the whole file. The short hash is the
first 12 hex digits. Hashes are kept by path, size and modification time. Torch-free.
"""

from __future__ import annotations

import hashlib
import re
import struct
from pathlib import Path

from ....io.safe_json import JSONFileError, loads_limited

SHORT = 12
BLOCK = 1 << 20
MAX_HEADER_BYTES = 100 * 1024 * 1024
_HEX64 = re.compile(r"[0-9a-f]{64}")
_cache: dict[tuple[str, int, int], str] = {}


def _stored_hash(path: Path, header_bytes: int) -> str | None:
    """The trainer's ``sshs_model_hash`` from the safetensors metadata, when it is a SHA-256."""
    if header_bytes > MAX_HEADER_BYTES:
        return None
    with path.open("rb") as f:
        f.seek(8)
        try:
            header = loads_limited(f.read(header_bytes), max_depth=4, max_bytes=MAX_HEADER_BYTES)
        except JSONFileError:
            return None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    value = meta.get("sshs_model_hash") if isinstance(meta, dict) else None
    return value.lower() if isinstance(value, str) and _HEX64.fullmatch(value.lower()) else None


def lora_hash(path: str | Path) -> str:
    """The full SHA-256 (hex) AUTOMATIC1111 uses for this LoRA file."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key in _cache:
        return _cache[key]
    start = 0
    if path.suffix.lower() == ".safetensors" and st.st_size >= 8:
        with path.open("rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
        stored = _stored_hash(path, n)
        if stored is not None:
            _cache[key] = stored
            return stored
        start = min(8 + n, st.st_size)
    digest = hashlib.sha256()
    with path.open("rb") as f:
        f.seek(start)
        for block in iter(lambda: f.read(BLOCK), b""):
            digest.update(block)
    _cache[key] = digest.hexdigest()
    return _cache[key]


def short_lora_hash(path: str | Path) -> str:
    return lora_hash(path)[:SHORT]


def lora_hashes_value(named: list[tuple[str, str | Path]]) -> str:
    """The "Lora hashes" value for (name as the prompt wrote it, file) pairs: ``name: hash, name2: hash2``.

    As AUTOMATIC1111 writes it, the names lose their colons and commas (they would break the list).
    """
    return ", ".join(f"{name.replace(':', '').replace(',', '')}: {short_lora_hash(path)}" for name, path in named)
