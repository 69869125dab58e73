"""Jet tagging for FPGA triggers: the hls4ml reference network, end to end.

Duarte et al., "Fast inference of deep neural networks in FPGAs for particle
physics", JINST 13 P07027 (2018), arXiv:1804.06913: jets of five classes
(gluon, light quark, W, Z, top) at pT around 1 TeV, 16 substructure features,
a 16-64-32-32-5 network (4,389 parameters), run in fixed-point arithmetic
with a latency of 75-150 ns.

- ``generation``: Pythia 8 + FastJet jets, truth-matched and soft-drop groomed (cached);
- ``features``: the 16 features, vectorised in NumPy;
- ``model``: the tagger architecture (registered as "jet-tagger"), training, pruning, QAT;
- ``fixedpoint``: bit-accurate ap_fixed<W,I> emulation of the network;
- ``hls``: the same network through hls4ml's compiled C simulation, when hls4ml is installed;
- ``latency``: clock cycles of the fully parallel design;
- ``metrics`` and ``plots``: ROC curves, AUCs, accuracy, confusion matrices.

Only NumPy and PyTorch are needed to import it; pythia8mc, fastjet and hls4ml
are imported where they are used.
"""

from erumlab.science.jets.features import FEATURES
from erumlab.science.jets.generation import CLASSES

__all__ = ["CLASSES", "FEATURES"]
