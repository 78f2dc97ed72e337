"""Training methods as objects, one file per method, each built from its YAML's `_target_`
and called by its task's training loop through a small protocol (`adaptation.AdaptationMethod`
for `segkit.tasks.adapt`). A method declares what it needs (a discriminator and what it
judges, a teacher, the target images); no task branches on a method's name."""
