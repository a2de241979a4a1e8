"""Sockets, addresses and event loops."""
