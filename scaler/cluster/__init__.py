"""Starting scaler's processes from a program: Scheduler, Cluster (a pool of workers) and SchedulerClusterCombo."""
