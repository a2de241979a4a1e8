"""Workers: an agent process that talks to the scheduler and processor processes that run user code."""
