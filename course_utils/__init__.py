"""Helpers for the contrastive-learning course; the notebooks import them from here.

Modules: ``runtime`` (profiles, devices, precision, seeds, folders), ``data`` (datasets in
memory), ``images`` (uint8 batches to float, resizing), ``augment`` (batched random views),
``models``, ``losses``, ``train`` (the loop, batch orders, optimiser and schedule),
``checkpoints`` (verified, cached weights), ``recipes`` (one frozen object per experiment
that trains, caches and reloads it), ``samplers`` (notebook 04's class-balanced
batches), ``evaluate`` (probes, kNN, scores), ``representations`` (scores with and without
labels), ``embed``, ``plots``, ``results``, ``course`` (the headless runner).
"""

from course_utils.runtime import data_dir, device, pick, profile, seed_everything, shown_path

__all__ = ["data_dir", "device", "pick", "profile", "seed_everything", "shown_path"]
