"""erumlab: a web platform for deep learning and data analysis in particle and
astroparticle physics."""

__version__ = "0.1.0"
