"""Experiment tracking: the W&B logger and its dashboard panels, run names and groups, and the
offline comparison of finished runs (`segkit.compare`)."""
