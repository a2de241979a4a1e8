"""The scheduler: one asyncio loop and one ROUTER socket serving clients and workers."""
