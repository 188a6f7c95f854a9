"""Evaluation protocols: filtered KG ranking, AUROC/AP, OGB, top-K recommendation."""
