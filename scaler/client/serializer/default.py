"""``DefaultSerializer`` where Scaler 1.x scripts import it from; see scaler.serializer."""

from scaler.serializer import DefaultSerializer

__all__ = ["DefaultSerializer"]
