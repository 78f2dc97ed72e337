"""What surrounds a job: config checks, launch and resume (before Hydra), composing configs,
the one builder of tasks and Trainers, precision resolution, checkpoints, provenance and run
outputs. Entry points import it; it imports no entry point; nothing below it imports it."""
