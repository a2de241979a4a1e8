"""Command lines: scaler_scheduler, scaler_worker (also scaler_cluster) and scaler_top."""
