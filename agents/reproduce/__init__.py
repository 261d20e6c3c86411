"""Reproductions: the article's scenarios and the extensions' exact figures (their commands are in ``agents.cli``)."""
