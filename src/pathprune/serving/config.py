"""Everything a server is started with: the model, the defaults it applies and the limits it enforces."""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass

from ..errors import PathpruneError

_HOST = re.compile(r"[0-9A-Za-z_.:%-]{1,253}")
"""IPv4 and IPv6 literals and host names (checked further when resolved, in :meth:`ServerConfig.check_bind`)."""


@dataclass(frozen=True)
class ServerConfig:
    """``pathprune serve`` options (runtime only: nothing here is saved with a model)."""

    model: str = "testbed"
    """Embedded name, Hugging Face directory or .gguf file."""
    host: str = "127.0.0.1"
    """Interface to bind (``0.0.0.0`` for every interface)."""
    port: int = 8000
    """Port to bind (0 picks a free one)."""
    served_name: str | None = None
    """The name clients pass as ``model`` (default: ``model`` as given)."""
    backend: str = "transformers"
    """Generation backend: ``transformers`` or ``vllm`` (one vLLM engine; STOP runs inside it as its plugin)."""
    stop: str | None = None
    """STOP checkpoint directory; the testbed's shipped one when serving ``testbed``; None elsewhere."""
    stop_name: str = "stop"
    """A second model name /classify accepts (the official client sends its LoRA's name, e.g. assess_lora)."""
    # -- request defaults ----------------------------------------------------------------
    default_paths: int = 8
    """N, the paths per prompt, when a request does not set ``paths``."""
    default_schedule: str = "16:4"
    """Pruning schedule when a request sets neither ``schedule`` nor ``keep``/``checkpoint``."""
    default_signal: str | None = None
    """Pruning signal (default: ``stop`` when a STOP checkpoint is loaded, else ``mean_logprob``)."""
    allow_signals: tuple[str, ...] = ()
    """Signal specs with an argument that clients may request (e.g. ``judge:/models/judge``); plain names
    need no listing. Arguments can name files, so clients never choose them freely."""
    default_max_tokens: int = 160
    """Generated tokens per path when a request does not set ``max_tokens``."""
    # -- limits ----------------------------------------------------------------------------
    max_paths: int = 64
    """Largest N a request may ask for."""
    max_tokens: int = 4096
    """Largest ``max_tokens`` a request may ask for (the model's context also bounds it)."""
    max_prompts: int = 16
    """Prompts per /v1/completions request."""
    max_classify_inputs: int = 256
    """Token lists per /classify request."""
    max_body_bytes: int = 1 << 20
    """Larger request bodies are answered 413."""
    max_queue: int = 64
    """Requests waiting for the model; one more is answered 429."""
    request_timeout: float = 120.0
    """Seconds a request may wait and run before it is answered 504 (requests may ask for less)."""
    # -- batching ----------------------------------------------------------------------------
    max_batch_requests: int = 16
    """Requests merged into one launch batch (1 disables cross-request batching)."""
    max_batch_rows: int = 512
    """Paths (or /classify inputs) in one launch batch."""
    threads: int | None = None
    """Torch threads of the worker (None: torch's default). On a shared or small CPU, 1 avoids
    OpenMP spin-waiting against other processes (measured 10x slower with 2 threads on a loaded 2-core box)."""

    def __post_init__(self) -> None:
        from ..engine.pruner import BACKENDS

        if self.backend not in BACKENDS:
            raise PathpruneError(f"unknown backend {self.backend!r}; available: {', '.join(BACKENDS)}",
                                 parameter="backend")
        positive = ("default_paths", "default_max_tokens", "max_paths", "max_tokens", "max_prompts",
                    "max_classify_inputs", "max_body_bytes", "max_queue", "max_batch_requests", "max_batch_rows")
        for name in positive:
            if getattr(self, name) < 1:
                raise PathpruneError(f"{name} must be >= 1, got {getattr(self, name)}", parameter=name)
        if self.threads is not None and self.threads < 1:
            raise PathpruneError(f"threads must be >= 1, got {self.threads}", parameter="threads")
        if self.request_timeout <= 0:
            raise PathpruneError(f"request_timeout must be > 0, got {self.request_timeout}")
        if self.default_paths > self.max_paths:
            raise PathpruneError(f"default_paths ({self.default_paths}) exceeds max_paths ({self.max_paths})")
        if not 0 <= self.port <= 65535:
            raise PathpruneError(f"port must be in 0..65535, got {self.port}", parameter="port", value=self.port)
        if not _HOST.fullmatch(self.host or ""):
            raise PathpruneError(f"host must be an IP address or a host name, got {self.host!r}", parameter="host",
                                 value=self.host)
        if self.stop is not None:
            from ..stop.checkpoint import check_stop

            check_stop(self.stop)  # the whole checkpoint, before any model is loaded

    def check_bind(self) -> None:
        """Resolve ``host`` and bind ``port`` once, before the model is loaded: an unknown host, a port in
        use or a privileged port is a one-line error instead of a traceback from the server's start."""
        try:
            infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except (socket.gaierror, UnicodeError) as err:
            raise PathpruneError(f"cannot resolve host {self.host!r} ({err})", parameter="host") from None
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            try:
                sock.bind(address)
            except OSError as err:
                raise PathpruneError(f"cannot bind {self.host}:{self.port} ({err.strerror or err})",
                                     parameter="port") from None

    @property
    def name(self) -> str:
        return self.served_name or self.model
