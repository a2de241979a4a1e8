"""``Serializer`` where Scaler 1.x scripts import it from; the definition is scaler.serializer.Serializer."""

from scaler.serializer import Serializer

__all__ = ["Serializer"]
