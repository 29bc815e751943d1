"""``pathprune serve``: the OpenAI-compatible server with pruned parallel reasoning and STOP's /classify."""

from __future__ import annotations

import typer

from .console import err_console
from .inputs import BACKEND_HELP


def serve(
    model: str = typer.Option("testbed", help="Embedded name, HF directory or .gguf file."),
    stop: str = typer.Option(None, help="STOP checkpoint directory (default: the shipped one for testbed)."),
    host: str = typer.Option("127.0.0.1", help="Interface to bind (0.0.0.0 for every interface)."),
    port: int = typer.Option(8000, help="Port (0 picks a free one)."),
    served_name: str = typer.Option(None, help="Model name clients send (default: --model)."),
    stop_name: str = typer.Option("stop", help="Another name /classify accepts (e.g. assess_lora)."),
    paths: int = typer.Option(8, "--n", "--paths", help="Default N, paths per prompt."),
    schedule: str = typer.Option("16:4", help="Default pruning schedule L:k[,L:k...] (a stage may be stepM/L:k; "
                                 "requests set step_delimiter); none = no pruning."),
    signal: str = typer.Option(None, help="Default signal (stop when a STOP checkpoint is loaded, else mean_logprob)."),
    allow_signal: list[str] = typer.Option(None, "--allow-signal",
                                           help="A signal spec with an argument clients may use (repeatable)."),
    max_tokens: int = typer.Option(160, help="Default generated tokens per path."),
    max_paths: int = typer.Option(64, help="Largest N a request may ask for."),
    max_tokens_limit: int = typer.Option(4096, "--max-tokens-limit", help="Largest max_tokens a request may ask for."),
    max_queue: int = typer.Option(64, help="Waiting requests before 429."),
    max_batch_requests: int = typer.Option(16, help="Requests merged into one launch batch (1 = no merging)."),
    max_batch_rows: int = typer.Option(512, help="Paths in one launch batch."),
    max_body_bytes: int = typer.Option(1 << 20, help="Larger bodies get 413."),
    request_timeout: float = typer.Option(120.0, help="Seconds before a request is answered 504."),
    threads: int = typer.Option(None, help="Torch threads of the model worker (default: torch's choice)."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
    backend: str = typer.Option("transformers", help=BACKEND_HELP),
) -> None:
    """Serve /v1/chat/completions, /v1/completions, /classify, /health, /v1/models and /metrics."""
    from uvicorn.config import LOG_LEVELS

    from ..engine import Schedule
    from ..errors import PathpruneError
    from ..serving import ServerConfig, create_app, serve as run_server
    from .inputs import checked_signals

    # every option is checked, the address bound once, before the model is loaded
    if log_level not in LOG_LEVELS:
        raise PathpruneError(f"--log-level must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
    config = ServerConfig(model=model, host=host, port=port, served_name=served_name, stop=stop, stop_name=stop_name,
                          backend=backend,
                          default_paths=paths, default_schedule=schedule, default_signal=signal,
                          allow_signals=tuple(allow_signal or ()),
                          default_max_tokens=max_tokens, max_paths=max_paths, max_tokens=max_tokens_limit,
                          max_queue=max_queue, max_batch_requests=max_batch_requests, max_batch_rows=max_batch_rows,
                          max_body_bytes=max_body_bytes, request_timeout=request_timeout,
                          threads=threads)
    Schedule.of(schedule)
    checked_signals(list(dict.fromkeys(s for s in (signal, *config.allow_signals) if s)))
    config.check_bind()
    err_console.print(f"loading {model}...", highlight=False)
    app = create_app(config)
    run_server(app, host=config.host, port=config.port, log_level=log_level)
