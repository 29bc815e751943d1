"""``pathprune serve``: an OpenAI-compatible server for pruned parallel reasoning, plus STOP's /classify.

    >>> from pathprune.serving import ServerConfig, create_app, ServerThread
    >>> with ServerThread(create_app(ServerConfig(model="testbed"))) as server:   # doctest: +SKIP
    ...     print(server.url)

See docs/serving.md for the endpoints, extension fields and measured throughput.
"""

from .app import create_app
from .config import ServerConfig
from .runner import ModelRunner
from .server import ServerThread, serve

__all__ = ["ModelRunner", "ServerConfig", "ServerThread", "create_app", "serve"]
