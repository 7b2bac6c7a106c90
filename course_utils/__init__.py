"""Helpers for the contrastive-learning course; the notebooks import them from here.

Modules: ``runtime`` (profiles, devices, seeds, folders, bfloat16), ``data`` (datasets in
memory), ``images`` (uint8 batches to float, resizing), ``augment`` (batched random views),
``models``, ``losses``, ``train`` (the loop, batch orders, optimiser and schedule),
``checkpoints`` (verified, cached weights), ``recipes`` (one frozen object per experiment
that trains, caches and reloads it), ``evaluate`` (probes, kNN, scores), ``embed``,
``plots``, ``results``.
"""

from course_utils.runtime import data_dir, device, pick, profile, seed_everything

__all__ = ["data_dir", "device", "pick", "profile", "seed_everything"]
