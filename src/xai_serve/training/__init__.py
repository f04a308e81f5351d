"""Training: recipes (``training/*.toml``), ``train`` / ``finetune`` / resume, checkpoint reports."""

from xai_serve.training.recipe import Recipe, RecipeError, load_recipe, parse_recipe
from xai_serve.training.runner import RunResult, default_out_dir, finetune, train

__all__ = ["Recipe", "RecipeError", "RunResult", "default_out_dir", "finetune", "load_recipe",
           "parse_recipe", "train"]
