"""Where the studio server's token is kept: apart from settings.json, where only the user can read it.

The OS keyring when the optional ``keyring`` package is installed and finds a backend there (GNOME Keyring, KWallet,
macOS Keychain, Windows Credential Locker); otherwise a file ``server-token`` in the studio's config folder, made
readable by its owner only (0600). The token never goes into settings.json, so copying or sharing the settings,
an export or a log does not give it away. A settings.json written before this (the token in plain text) is
migrated on load (settings.py).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from .files import write_atomic

TOKEN_FILE = "server-token"
KEYRING_SERVICE = "Diffusion Studio"
_AUTO = object()  # TokenStore's default: the ``keyring`` package when it is installed


def _installed_keyring() -> Any:
    try:
        import keyring
    except ImportError:
        return None
    return keyring


def _usable(keyring: Any) -> bool:
    """Whether the keyring package found a real backend (its fail and null backends have no priority)."""
    try:
        return float(getattr(keyring.get_keyring(), "priority", 0)) > 0
    except Exception:  # noqa: BLE001 - a broken backend (no D-Bus, a locked keychain) is no keyring
        return False


class TokenStore:
    """The token of the studio whose config folder is ``config_dir`` (one per folder: a scratch
    DIFFUSION_STUDIO_HOME keeps its own)."""

    def __init__(self, config_dir: Path, keyring: Any = _AUTO):
        self.file = Path(config_dir) / TOKEN_FILE
        self.account = f"server token ({Path(config_dir).expanduser().resolve()})"
        module = _installed_keyring() if keyring is _AUTO else keyring
        self._keyring = module if module is not None and _usable(module) else None

    @property
    def where(self) -> str:
        return "the system keyring" if self._keyring is not None else str(self.file)

    def load(self) -> str:
        """The token kept ("" when none is)."""
        if self._keyring is not None:
            try:
                token = self._keyring.get_password(KEYRING_SERVICE, self.account)
            except Exception:  # noqa: BLE001 - the keyring went away: the file may still hold one
                token = None
            if token:
                return token
        try:
            if stat.S_IMODE(self.file.stat().st_mode) & 0o077:
                os.chmod(self.file, 0o600)  # copied in with looser rights: the owner's alone again
            return self.file.read_bytes().decode("utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return ""

    def save(self, token: str) -> None:
        """Keep ``token`` ("" forgets it). OSError when neither the keyring nor the file can take it."""
        token = token.strip()
        if self._keyring is not None:
            try:
                if token:
                    self._keyring.set_password(KEYRING_SERVICE, self.account, token)
                else:
                    self._forget_in_keyring()
                self._remove_file()  # one place only: an old file copy must not outlive a change
                return
            except Exception:  # noqa: BLE001 - a keyring that refuses (locked, no D-Bus): the file instead
                pass
        if not token:
            self._remove_file()
            return
        write_atomic(self.file, token.encode("utf-8"))  # mkstemp's file: 0600 from the start

    def _forget_in_keyring(self) -> None:
        try:
            self._keyring.delete_password(KEYRING_SERVICE, self.account)
        except Exception:  # noqa: BLE001 - nothing was kept there
            pass

    def _remove_file(self) -> None:
        try:
            self.file.unlink()
        except FileNotFoundError:
            pass
