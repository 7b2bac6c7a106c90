"""Notebook 02's recipe: SimSiam pretraining of the FashionMNIST source's backbone."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch

from course_utils import checks
from course_utils.augment import ViewAugment
from course_utils.checkpoints import History
from course_utils.data import load_dataset
from course_utils.losses import simsiam_loss
from course_utils.models import ConvBackbone, SimSiam
from course_utils.recipes import Recipe
from course_utils.recipes.fashion import fashion_split
from course_utils.runtime import pick
from course_utils.train import fit_two_view

# Crops of 8-100% of the area, flips, brightness and contrast: no colour to jitter.
FASHION_VIEWS = ViewAugment(size=28, crop_scale=(0.08, 1.0), jitter=(0.6, 0.6, 0.0, 0.0), jitter_p=0.8,
                            grayscale_p=0.0)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class SimSiamRecipe(Recipe):
    """SimSiam (Chen and He, 2021) on the first ``images`` of the FashionMNIST training pool
    (:func:`~course_utils.recipes.fashion.fashion_split`), labels unused:
    :class:`~course_utils.models.ConvBackbone` + projector + predictor, Adam (weight decay
    as an L2 penalty) with a cosine decay to 0. ``stop_gradient=False`` is the paper's
    ablation, which collapses."""

    name = "simsiam_fashion"
    notebook = "02_simsiam_fashion_mnist"
    images: int
    epochs: int
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-5
    proj_dim: int = 512
    pred_dim: int = 128
    augment: ViewAugment = FASHION_VIEWS
    stop_gradient: bool = True

    @classmethod
    def default(cls) -> SimSiamRecipe:
        """The source's scale (100 epochs) in ``full``, 25 epochs in ``laptop``, a toy run in ``smoke``."""
        return cls(images=pick(smoke=4_000, laptop=55_000, full=55_000), epochs=pick(smoke=1, laptop=25, full=100))

    def build(self) -> SimSiam:
        return SimSiam(ConvBackbone(), proj_dim=self.proj_dim, pred_dim=self.pred_dim)

    def load_data(self) -> torch.Tensor:
        pool, _ = fashion_split(load_dataset("fashion_mnist", "train"))
        return pool.images[: self.images]

    def fit(self, model: SimSiam, data: torch.Tensor, validate=None) -> History:
        checks.setting_matches("images", self.images, data)
        loss = partial(simsiam_loss, stop_gradient=self.stop_gradient)
        return fit_two_view(
            model, data, self.augment, loss, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
            weight_decay=self.weight_decay, optimizer="adam", seed=self.seed, validate=validate, desc="SimSiam",
        )  # fmt: skip

    def cost(self) -> str:
        return f"{self.epochs} epochs over {self.images:,} images, about 20 s an epoch on a 2-core CPU"
