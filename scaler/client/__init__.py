"""The client: submits work to a scheduler and returns futures."""
