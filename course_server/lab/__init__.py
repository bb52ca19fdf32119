"""Measuring and showing: the experiments lessons run and how notebooks display what they see."""
