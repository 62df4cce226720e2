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
