"""Helpers for the contrastive-learning course; the notebooks import them from here.

Modules: ``runtime`` (profiles, devices, seeds, folders, bfloat16), ``data`` (datasets in
memory), ``augment`` (batched random views), ``models``, ``losses``, ``train``
(loop and checkpoints), ``evaluate`` (probes, kNN, scores), ``baselines`` (the
FashionMNIST source's model and 1,000-label recipe), ``embed``, ``plots``, ``results``.
"""

from course_utils.runtime import data_dir, device, pick, profile, seed_everything

__all__ = ["data_dir", "device", "pick", "profile", "seed_everything"]
