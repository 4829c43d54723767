"""Tools around the pipeline, not stages of it: rendering params, running and verifying rebuilds, phase
branches, the cross-check against the original scripts, the CPU-numerics check. ``ls stages/`` is the map
dvc.yaml draws; these are run by hand (``python -m tools.<name>``) or by tests and CI."""
