"""The engine as a Ray Serve application and the studio as its client (issue 13).

Pure Python, numpy and the engine: never Qt. ``wire`` is what both sides share (JSON, PNG and .npy on the wire,
never pickle); ``app`` the server's deployments; ``client`` the asyncio client.
"""

INSTALL_SERVE = 'pip install "diffusion-studio[serve]"'
INSTALL_CLIENT = 'pip install "diffusion-studio[client]"'
