"""Every Lightning callback segkit configures (``conf/callbacks``) or adds to a job."""
