"""The wire protocol shared by the client, the scheduler, the worker agents and the processors."""
