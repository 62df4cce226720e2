"""The studio server's token is kept apart from settings.json: in a file only the user can read, or the OS keyring
when the keyring package finds one; a settings.json that still holds it in plain text is migrated on load."""

from __future__ import annotations

import json
import os
import stat

import pytest

from studio.state.paths import StudioPaths
from studio.state.settings import Settings, load_settings, save_settings
from studio.state.token_store import KEYRING_SERVICE, TOKEN_FILE, TokenStore

SECRET = "s3cret-token-4711"


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class FakeKeyring:
    """The keyring package's functions over a dict; ``priority`` as its backend reports it."""

    def __init__(self, priority: float = 1, refuse: bool = False):
        self.passwords: dict[tuple[str, str], str] = {}
        self.priority, self.refuse = priority, refuse

    def get_keyring(self):
        return self

    def get_password(self, service, user):
        return self.passwords.get((service, user))

    def set_password(self, service, user, password):
        if self.refuse:
            raise RuntimeError("the keyring is locked")
        self.passwords[(service, user)] = password

    def delete_password(self, service, user):
        del self.passwords[(service, user)]


def test_the_token_is_kept_in_a_file_only_the_user_reads_never_in_settings_json(tmp_path):
    path = tmp_path / "config" / "settings.json"
    save_settings(path, Settings(engine="server", server_url="http://gpu-box:8188", server_token=SECRET))
    assert SECRET not in path.read_text() and "server_token" not in json.loads(path.read_text())
    token_file = path.parent / TOKEN_FILE
    assert token_file.read_text() == SECRET and mode(token_file) == 0o600
    loaded = load_settings(path).settings
    assert (loaded.server_token, loaded.server_url, loaded.on_server) == (SECRET, "http://gpu-box:8188", True)
    assert SECRET not in repr(loaded)  # nor in a log line that prints the settings

    save_settings(path, loaded.with_changes(server_token=""))  # an emptied token box forgets it
    assert not token_file.exists() and load_settings(path).settings.server_token == ""


def test_a_plaintext_token_in_an_old_settings_json_is_moved_out_on_load(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"engine": "server", "server_url": "http://gpu-box:8188", "server_token": SECRET,
                                "theme": "light"}))
    loaded = load_settings(path)
    assert loaded.settings.server_token == SECRET and loaded.settings.theme == "light" and loaded.message is None
    assert SECRET not in path.read_text() and json.loads(path.read_text())["theme"] == "light"
    assert (tmp_path / TOKEN_FILE).read_text() == SECRET and mode(tmp_path / TOKEN_FILE) == 0o600
    assert load_settings(path).settings.server_token == SECRET  # and found there the next time


def test_a_token_file_readable_by_others_is_made_the_owners_alone(tmp_path):
    token_file = tmp_path / TOKEN_FILE
    token_file.write_text(SECRET + "\n")
    os.chmod(token_file, 0o644)
    assert TokenStore(tmp_path, keyring=None).load() == SECRET and mode(token_file) == 0o600


def test_the_os_keyring_keeps_it_when_the_keyring_package_finds_one(tmp_path):
    keyring = FakeKeyring()
    (tmp_path / TOKEN_FILE).write_text("older")  # a file from before the keyring was installed
    store = TokenStore(tmp_path, keyring=keyring)
    save_settings(tmp_path / "settings.json", Settings(server_token=SECRET), store)
    assert list(keyring.passwords.values()) == [SECRET] and next(iter(keyring.passwords))[0] == KEYRING_SERVICE
    assert not (tmp_path / TOKEN_FILE).exists()  # one place only
    assert load_settings(tmp_path / "settings.json", store).settings.server_token == SECRET
    store.save("")
    assert keyring.passwords == {}


@pytest.mark.parametrize("keyring", [FakeKeyring(priority=0), FakeKeyring(priority=-1), FakeKeyring(refuse=True)],
                         ids=["fail backend", "null backend", "locked"])
def test_without_a_working_keyring_the_file_is_used(tmp_path, keyring):
    store = TokenStore(tmp_path, keyring=keyring)
    store.save(SECRET)
    assert (tmp_path / TOKEN_FILE).read_text() == SECRET and mode(tmp_path / TOKEN_FILE) == 0o600
    assert store.load() == SECRET and keyring.passwords == {}


def test_a_token_set_in_the_window_is_kept_apart_and_comes_back_at_the_next_start(qtbot, tmp_path):
    from studio.app import create_studio

    paths = StudioPaths.under(tmp_path)
    studio = create_studio(paths)
    qtbot.addWidget(studio.window)
    controller = studio.controller
    # The address and token are kept while the studio runs on this computer (no server is reached).
    controller.apply_settings(controller.settings.with_changes(server_url="http://gpu-box:8188", server_token=SECRET))
    controller.shutdown()
    assert SECRET not in paths.settings_file.read_text()
    assert (paths.config_dir / TOKEN_FILE).read_text() == SECRET
    assert mode(paths.config_dir / TOKEN_FILE) == 0o600
    again = create_studio(paths)
    qtbot.addWidget(again.window)
    assert again.controller.settings.server_token == SECRET
    again.controller.shutdown()


@pytest.mark.parametrize(("stored", "token"), [(f"  {SECRET}\n", SECRET), ("two words", ""), ("a\rb", ""), (7, "")])
def test_an_old_plaintext_token_is_taken_only_when_it_can_be_one(tmp_path, stored, token):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"engine": "server", "server_token": stored}))
    loaded = load_settings(path).settings
    assert loaded.server_token == token
    save_settings(path, loaded)  # what closing the window writes: the next start reads the same
    assert load_settings(path).settings == loaded


def test_the_real_keyring_package_keeps_it_through_its_own_backend_api(tmp_path):
    """The [client] extra's keyring: TokenStore's default finds the package, and a backend it reports as usable
    keeps the token through keyring's own get/set/delete functions; its null backend (the tests') leaves the file."""
    keyring = pytest.importorskip("keyring")
    from keyring.backend import KeyringBackend

    class Memory(KeyringBackend):
        priority = 1
        passwords: dict = {}

        def get_password(self, service, username):
            return self.passwords.get((service, username))

        def set_password(self, service, username, password):
            self.passwords[(service, username)] = password

        def delete_password(self, service, username):
            self.passwords.pop((service, username))

    assert TokenStore(tmp_path).where == str(tmp_path / TOKEN_FILE)  # conftest's null backend: no keyring
    before = keyring.get_keyring()
    keyring.set_keyring(Memory())
    try:
        store = TokenStore(tmp_path)
        assert store.where == "the system keyring"
        store.save(SECRET)
        assert list(Memory.passwords.values()) == [SECRET] and not (tmp_path / TOKEN_FILE).exists()
        assert TokenStore(tmp_path).load() == SECRET
        store.save("")
        assert Memory.passwords == {}
    finally:
        keyring.set_keyring(before)
