"""``python -m studio serve``: the engine as a Ray Serve application on the local Ray cluster (or a given one)."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from . import INSTALL_SERVE
from .options import DEFAULT_PORT, ServerOptions
from .security import MAX_QUEUED_RUNS, check_listen, read_tokens_file


def add_serve_parser(sub) -> None:
    serve = sub.add_parser("serve", help="run the engine as a server (Ray Serve) for studios and the command line",
                           description="Run the studio's engine as a Ray Serve application: one replica per GPU "
                                       "(CPU replicas without one), an HTTP API under /v1. See docs/serve.md.")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1; any other needs --token)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    serve.add_argument("--token", action="append", default=[],
                       help="clients must send 'Authorization: Bearer TOKEN' (required off 127.0.0.1); repeatable: "
                            "each token is a client with its own queue")
    serve.add_argument("--tokens-file", type=Path, default=None, metavar="FILE",
                       help="more clients' tokens, one a line: TOKEN, or TOKEN LIMIT for its own queue limit")
    serve.add_argument("--replicas", type=int, default=None,
                       help="engine replicas (default: one per GPU in the cluster, else 1)")
    serve.add_argument("--min-replicas", type=int, default=None, help="autoscale from this many replicas ...")
    serve.add_argument("--max-replicas", type=int, default=None, help="... up to this many, on queued runs")
    serve.add_argument("--cpus-per-replica", type=float, default=1.0,
                       help="CPUs Ray reserves for each replica (default 1)")
    serve.add_argument("--threads", type=int, default=0,
                       help="torch threads per replica (default: its CPUs)")
    serve.add_argument("--cpu", action="store_true", help="CPU replicas even when the cluster has GPUs")
    serve.add_argument("--model-dir", action="append", default=[], metavar="DIR",
                       help="a folder of model files to offer (repeatable); only these and the built-in models "
                            "are offered")
    serve.add_argument("--default-model", default="",
                       help="the model a request without one runs (default: the embedded model, else toy)")
    serve.add_argument("--queue-limit", type=int, default=MAX_QUEUED_RUNS,
                       help=f"runs queued or running per client (default {MAX_QUEUED_RUNS}); more get HTTP 429")
    serve.add_argument("--address", default=None,
                       help="the Ray cluster to join: auto (the one 'ray start' started here) or ray://HOST:10001; "
                            "default: a running local cluster, else a new one")


def run_serve(args: argparse.Namespace) -> int:
    """Start the server, print its URL, serve until Ctrl+C. ValueError for settings that cannot work."""
    tokens = _tokens(args)
    check_listen(args.host, tokens[0][0] if tokens else None)
    if args.queue_limit < 1:
        raise ValueError(f"--queue-limit {args.queue_limit} is too small: at least 1")
    if not 0 < args.port < 65536:
        raise ValueError(f"--port {args.port} is not a port number (1 to 65535)")
    for name in ("replicas", "min_replicas", "max_replicas"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "min_replicas" else 1):
            raise ValueError(f"--{name.replace('_', '-')} {value} is too small")
    try:
        import ray
        from ray import serve

        from .app import build_app
        from .catalog import ServerCatalog
        from .ray_tuning import server_env
    except ImportError as exc:
        print(f"error: serving needs Ray Serve ({exc}); install it with: {INSTALL_SERVE}", file=sys.stderr)
        return 2
    started_ray = not ray.is_initialized()
    if started_ray:
        ray.init(address=args.address, include_dashboard=False, logging_level="WARNING",
                 runtime_env={"env_vars": server_env()})  # the controller and replicas this command starts
    stop_on_sigterm()  # after ray.init, which puts in a SIGTERM handler of its own that aborts the process
    try:
        options = _options(args, ray.cluster_resources(), tokens)
        options.autoscaling()  # refuse a bad min / max before anything starts
        catalog = ServerCatalog.scan(options.model_folders, options.default_model)  # a bad default: said now
        for reason in catalog.skipped:
            print(f"note: skipped {reason}", file=sys.stderr)
        serve.start(http_options={"host": args.host, "port": args.port})
        serve.run(build_app(options), name=options.app_name, route_prefix="/", blocking=False)
        where = "GPU" if options.gpus_per_replica else "CPU"
        count = (f"{options.min_replicas or 0} to {options.max_replicas} replicas" if options.autoscaling() else
                 f"{options.fixed_replicas()} replica(s)")
        shown_host = f"[{args.host}]" if ":" in args.host else args.host
        print(f"serving on http://{shown_host}:{args.port} ({count} on {where}"
              f"{_token_note(tokens)}); Ctrl+C stops", flush=True)
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nstopping", file=sys.stderr, flush=True)
        return 0
    finally:
        if ray.is_initialized():
            serve.shutdown()
        if started_ray:
            ray.shutdown()


def stop_on_sigterm() -> None:
    """SIGTERM (systemd, docker stop, kill) stops the server as Ctrl+C does: the app shut down and the Ray cluster
    it started stopped, instead of leaving Ray's processes running."""
    def interrupt(_signum, _frame) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _tokens(args: argparse.Namespace) -> tuple[tuple[str, int], ...]:
    """--token's (with the server's queue limit) then --tokens-file's; ValueError for one given twice."""
    tokens = tuple((token, 0) for token in args.token if token)
    if args.tokens_file is not None:
        tokens += read_tokens_file(args.tokens_file)
    names = [token for token, _ in tokens]
    if len(set(names)) != len(names):
        raise ValueError("a token is given twice (--token, --tokens-file): each client needs its own")
    return tokens


def _token_note(tokens: tuple[tuple[str, int], ...]) -> str:
    if not tokens:
        return ""
    return ", token required" if len(tokens) == 1 else f", {len(tokens)} tokens, each with its own queue"


def _options(args: argparse.Namespace, resources: dict, tokens: tuple[tuple[str, int], ...] = ()) -> ServerOptions:
    gpus = 0 if args.cpu else int(resources.get("GPU", 0))
    replicas = args.replicas if args.replicas is not None else max(gpus, 1)
    return ServerOptions(host=args.host, port=args.port, client_tokens=tokens, replicas=replicas,
                         min_replicas=args.min_replicas, max_replicas=args.max_replicas,
                         gpus_per_replica=1.0 if gpus else 0.0, cpus_per_replica=args.cpus_per_replica,
                         threads=args.threads, device="auto" if gpus else "cpu",
                         model_folders=tuple(str(d) for d in args.model_dir), default_model=args.default_model,
                         queue_limit=args.queue_limit)
