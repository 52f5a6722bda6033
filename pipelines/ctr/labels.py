"""How models are named where people read them (runs, figures, reports), without torch."""


def model_label(model: str, bse_mode: bool) -> str:
    """A model's name with its mode: "sdim-bse" for SDIM in BSE mode."""
    return f"{model}-bse" if bse_mode else model
