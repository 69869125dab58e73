"""erumlab.science: the physics and machine-learning core shared by notebooks,
batch jobs and the bundled examples.

It depends on NumPy and PyTorch only, never on Django or the portal (an
import-linter contract in pyproject.toml enforces it), so it runs the same in
a notebook, a worker and a plain script.
"""
