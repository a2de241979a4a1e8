"""A scheduler and its workers started together on one machine."""
