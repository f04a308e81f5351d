"""Training: recipes (``training/*.toml``), ``train`` / ``finetune`` / resume, checkpoint reports."""

from xai_serve.lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(("Recipe", "RecipeError", "load_recipe", "parse_recipe"), "recipe"),
    **dict.fromkeys(("RunResult", "default_out_dir", "finetune", "train"), "runner"),
}
__all__ = sorted(_EXPORTS)  # imported on first use (torch stays out of `xai --help`)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
