"""Notebook 02's recipe: SimSiam pretraining of the FashionMNIST source's backbone."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from course_utils import checks
from course_utils.augment import ViewAugment
from course_utils.checkpoints import History
from course_utils.data import first_k, load_dataset
from course_utils.methods.simsiam import SimSiam, simsiam_monitor, simsiam_step
from course_utils.methods.supervised import ConvBackbone
from course_utils.recipes import Recipe
from course_utils.recipes.fashion import fashion_split
from course_utils.runtime import pick
from course_utils.train import ShuffledBatches, fit, recipe_step

# Crops of 8-100% of the area, flips, brightness and contrast: no colour to jitter.
FASHION_VIEWS = ViewAugment(size=28, crop_scale=(0.08, 1.0), jitter=(0.6, 0.6, 0.0, 0.0), jitter_p=0.8,
                            grayscale_p=0.0)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class SimSiamRecipe(Recipe):
    """SimSiam (Chen and He, 2021) on the first ``images`` of the FashionMNIST training pool
    (:func:`~course_utils.recipes.fashion.fashion_split`), labels unused: notebook 02's
    ``SimSiam`` on notebook 01's ``ConvBackbone``, its ``simsiam_step``, Adam
    (weight decay as an L2 penalty) with a cosine decay to 0. ``stop_gradient=False`` is the
    paper's ablation, which collapses. Every run logs notebook 02's ``simsiam_monitor``."""

    name = "simsiam_fashion"
    notebook = "02_simsiam_fashion_mnist"
    default_model = SimSiam
    default_step = simsiam_step
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

    def short_runs(self) -> dict[str, SimSiamRecipe]:
        """Notebook 02's short experiments, 2 epochs each in ``laptop``: this recipe with and
        without crops, and without the stop-gradient (notebook 06 measures the first two)."""
        short = dataclasses.replace(self, epochs=pick(smoke=1, laptop=2, full=10))
        no_crops = dataclasses.replace(self.augment, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0))
        return {"with crops": short, "without crops": dataclasses.replace(short, augment=no_crops),
                "without stop-gradient": dataclasses.replace(short, stop_gradient=False)}  # fmt: skip

    @staticmethod
    def bank_size() -> int:
        """Labelled pool images the monitor's kNN vote looks up."""
        return pick(smoke=1_000, laptop=10_000, full=10_000)

    def build(self) -> SimSiam:
        return self.model_class(ConvBackbone(), proj_dim=self.proj_dim, pred_dim=self.pred_dim)

    def load_data(self) -> torch.Tensor:
        pool, _ = fashion_split(load_dataset("fashion_mnist", "train"))
        return pool.images[: self.images]

    def fit(self, model: SimSiam, data: torch.Tensor, validate=None) -> History:
        """Train ``model`` on ``data``; without ``validate``, log ``simsiam_monitor`` on the pool's
        first :meth:`bank_size` labels and the validation images, so that a run logs the same
        numbers whichever notebook trains it."""
        checks.setting_matches("images", self.images, data)
        if validate is None:
            pool, validation = fashion_split(load_dataset("fashion_mnist", "train"))
            validate = simsiam_monitor(first_k(pool, self.bank_size()), validation)
        step = recipe_step(self.training_step, data, self)
        batches = ShuffledBatches(len(data), self.batch_size, self.seed)
        return fit(model, step, batches, epochs=self.epochs, lr=self.lr, weight_decay=self.weight_decay,
                   optimizer="adam", validate=validate, desc="SimSiam")  # fmt: skip

    def cost(self) -> str:
        return f"{self.epochs} epochs over {self.images:,} images, about 20 s an epoch on a 2-core CPU"
