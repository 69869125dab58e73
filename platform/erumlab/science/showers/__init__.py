"""Ultra-fast calorimeter shower simulation with a conditional Wasserstein GAN.

After Erdmann, Glombitza, Quast, Comput. Softw. Big Sci. 3 (2019) 4,
arXiv:1807.01954: electrons of 20-90 GeV in a sampling calorimeter of 7
layers of 12x15 cells, one energy (70 GeV) held out to test interpolation.

- ``geometry``: the calorimeters (default ``"hgcal-7x12x15"``, larger ``"fine-24x20x20"``);
- ``simulation``: the detailed simulation, a particle-level EM cascade in numba (cached samples);
- ``reference``: the Grindhammer-Peters (GFlash) profile the cascade is checked against;
- ``model``: the conditional WGAN-GP (generator registered as "calo-wgan-generator"),
  training with checkpoints, and ``generate``;
- ``metrics``, ``plots``: validation observables, the classifier test, figures;
- ``speed``: per-shower cost of simulation and generation.

No Django: only NumPy, numba, PyTorch and matplotlib (for ``plots``).
"""

from erumlab.science.showers.geometry import DEFAULT_GEOMETRY, GEOMETRIES

__all__ = ["DEFAULT_GEOMETRY", "GEOMETRIES"]
