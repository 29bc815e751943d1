"""The server's routes, one router per concern: completions (OpenAI), STOP's classify, status."""

from .classify import router as classify
from .completions import router as completions
from .status import router as status

ROUTERS = (completions, classify, status)
