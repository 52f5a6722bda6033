"""seqlake's logic: pure transformations, models and the synthetic world."""
