"""``abstractllm``: a thin alias of ``abstractcore`` for code written against the older name."""

from abstractcore import *  # noqa: F403
from abstractcore import __all__, create_llm  # noqa: F401
from abstractcore._version import __version__ as __version__
