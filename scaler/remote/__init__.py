"""RLTK's remote computing (``rltk.remote``) on a scaler cluster: ``Remote`` connects to a scheduler, ``Task``
sends inputs there in chunks and hands every result to an output handler in this process. See docs/remote.md.
"""

from scaler.remote.remote import Remote
from scaler.remote.task import Task

__all__ = ["Remote", "Task"]
