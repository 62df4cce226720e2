import os

# Before torch loads anywhere: torch's default OpenMP spin-wait slows it 3-40x on a shared CPU.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The picker lists the toy model (the tests' fast model) only when asked: the tests ask.
os.environ.setdefault("DIFFUSION_STUDIO_TEST_MODELS", "1")
# Where the keyring package is installed, the tests' server tokens stay out of the user's real keyring.
os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")

# The local Ray cluster with the studio's Serve app, shared by every serve test (skips without ray[serve]), and a
# second ingress in front of the same replicas (two tokens with their own queues, a model folder).
from serve_cluster import serve_server, serve_url  # noqa: E402, F401
from serve_ingress import second_ingress  # noqa: E402, F401

CLUSTER_FIXTURES = {"serve_server", "serve_url"}


def pytest_collection_modifyitems(session, config, items):
    """The modules that use the serve cluster run last, in their usual order: the cluster starts with the first
    of them and stops at the end of the session, so its idle processes (about 15 % of a core) do not run beside
    every other test. Whole modules move, so their module fixtures are still set up once."""
    cluster_modules = {item.module for item in items if CLUSTER_FIXTURES & set(item.fixturenames)}
    items.sort(key=lambda item: item.module in cluster_modules)  # stable: the order inside each group is kept
