"""Small helpers shared by the command lines and the processes."""
