"""Jinja templates of the dataset and model cards (shipped as ``mmmi_hf.model_cards``)."""
