"""The serializer classes under the module paths scripts written for Scaler 1.x import them from."""
