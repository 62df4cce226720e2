"""studio/serve/options.py: fixed replicas, or autoscaling between --min-replicas and --max-replicas."""

import pytest

from studio.serve.options import ServerOptions


def test_fixed_or_autoscaled_replicas():
    assert ServerOptions(replicas=3).autoscaling() is None and ServerOptions(replicas=3).fixed_replicas() == 3
    assert ServerOptions(min_replicas=2, max_replicas=2).autoscaling() is None
    scaled = ServerOptions(replicas=1, min_replicas=0, max_replicas=4).autoscaling()
    assert scaled == {"min_replicas": 0, "max_replicas": 4, "initial_replicas": 1, "target_ongoing_requests": 1}
    with pytest.raises(ValueError, match="min <= max"):
        ServerOptions(min_replicas=3, max_replicas=2).autoscaling()


def test_options_survive_the_trip_to_the_replicas():
    options = ServerOptions(token="x", model_folders=("/models",), threads=2)
    assert ServerOptions.from_dict(options.to_dict()) == options
    assert options.torch_threads() == 2 and ServerOptions(cpus_per_replica=4).torch_threads() == 4


def test_sigterm_stops_the_server_as_ctrl_c_does():
    """systemd and docker stop send SIGTERM: run_serve turns it into the KeyboardInterrupt its Ctrl+C path handles
    (the app shut down, the Ray cluster it started stopped; tests/serve_cluster.py checks that path's exit 0)."""
    import os
    import signal

    from studio.serve.cli import stop_on_sigterm

    before = signal.getsignal(signal.SIGTERM)
    try:
        stop_on_sigterm()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)  # Python runs the handler before the next line
    finally:
        signal.signal(signal.SIGTERM, before)
