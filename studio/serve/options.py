"""How a server runs: where it listens, its token, its replicas and their share of the machine, its models."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .security import MAX_QUEUED_RUNS

DEFAULT_PORT = 8188


@dataclass(frozen=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    token: str | None = None
    # More clients' tokens, each (token, its queue limit; 0: queue_limit): each token's runs are counted apart
    client_tokens: tuple[tuple[str, int], ...] = ()
    replicas: int = 1  # engine replicas (the number when min_replicas == max_replicas, else the start)
    min_replicas: int | None = None  # with max_replicas: autoscaled between them on queued runs
    max_replicas: int | None = None
    gpus_per_replica: float = 0.0  # 1: one replica per GPU; 0: CPU replicas
    cpus_per_replica: float = 1.0
    threads: int = 0  # torch threads per replica; 0: as many as its CPUs (at least 1)
    device: str = "auto"  # what a replica runs on: auto (the GPU Ray gave it, else the CPU), cpu, cuda
    model_folders: tuple[str, ...] = ()
    default_model: str = ""  # "": the embedded model when installed, else toy
    queue_limit: int = MAX_QUEUED_RUNS  # queued + running runs per client
    keep_runs: int = 64  # finished runs whose step states the server keeps for branching
    app_name: str = "studio"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServerOptions:
        return cls(**{**data, "model_folders": tuple(data.get("model_folders", ())),
                      "client_tokens": tuple((str(t), int(n)) for t, n in data.get("client_tokens", ()))})

    def tokens(self) -> tuple[tuple[str, int], ...]:
        """Every token the server takes, with its queue limit (0: ``queue_limit``): --token's first."""
        return (((self.token, 0),) if self.token else ()) + self.client_tokens

    def torch_threads(self) -> int:
        return self.threads if self.threads > 0 else max(1, int(self.cpus_per_replica))

    def autoscaling(self) -> dict[str, Any] | None:
        """Ray Serve's autoscaling_config when the replicas may vary, else None (a fixed number)."""
        low = self.min_replicas if self.min_replicas is not None else self.replicas
        high = self.max_replicas if self.max_replicas is not None else max(self.replicas, low)
        if self.min_replicas is None and self.max_replicas is None or low == high:
            return None
        if not 0 <= low <= high or high < 1:
            raise ValueError(f"--min-replicas {low} and --max-replicas {high} need 0 <= min <= max and max >= 1")
        # One run at a time per replica: a replica per queued run, up to max_replicas.
        return {"min_replicas": low, "max_replicas": high, "initial_replicas": min(max(self.replicas, low), high),
                "target_ongoing_requests": 1}

    def fixed_replicas(self) -> int:
        low = self.min_replicas if self.min_replicas is not None else self.replicas
        return max(1, low)
