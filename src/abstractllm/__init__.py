"""``abstractllm``: a thin alias of ``abstractcore`` for code written against the older name."""

from abstractcore import *  # noqa: F403
from abstractcore import __all__, __version__, create_llm  # noqa: F401
