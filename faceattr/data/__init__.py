"""Datasets: the 40 CelebA attribute names, the CelebA reader, and the paper's Table 1."""
