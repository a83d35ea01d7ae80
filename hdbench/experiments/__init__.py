"""Experiments of the suite: protocols that train and analyse families of models.

- :mod:`hdbench.experiments.sparse_recordings` — students trained on sparse recordings of a
  teacher circuit (Salatiello & Giese 2020), ``hdbench experiment sparse-recordings``.
- :mod:`hdbench.experiments.cueva_reproduction` — which training recipe reproduces which claim
  of Cueva et al. (2020), ``hdbench experiment cueva-reproduction``.

Importing this package imports nothing heavy.
"""
