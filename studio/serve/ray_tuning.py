"""Ray Serve's settings for a diffusion server, given to every process of the server's Ray job.

Ray Serve's defaults are tuned for web requests of milliseconds: its controller looks at every deployment ten
times a second and each replica exports its metrics as often. A run here takes seconds, so once a second is
enough to notice a dead replica or a queue that wants another one, and the server idles on a third less CPU
(measured on a 2-core machine: 18% of one core with the defaults, 12% with these; docs/serve.md). A value set
in the environment wins.
"""

from __future__ import annotations

import os

SERVER_ENV = {
    "RAY_SERVE_CONTROL_LOOP_INTERVAL_S": "1.0",  # default 0.1
    "RAY_SERVE_METRICS_EXPORT_INTERVAL_MS": "1000",  # default 100
}


def server_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """SERVER_ENV with the values ``environ`` (default os.environ) already sets in their place."""
    environ = os.environ if environ is None else environ
    return {key: environ.get(key, value) for key, value in SERVER_ENV.items()}
