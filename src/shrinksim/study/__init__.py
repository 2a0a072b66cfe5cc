"""The grid study: simulate data over a grid of designs, fit every model and prior, and
measure shrinkage and accuracy (simulate, fit, summarize, measures, plot, report)."""
