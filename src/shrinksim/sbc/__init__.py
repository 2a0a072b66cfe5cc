"""Simulation-based calibration (SBC) of the partial-pooling Stan program.

Talts, Betancourt, Simpson, Vehtari & Gelman (2018), "Validating Bayesian inference
algorithms with simulation-based calibration", arXiv:1804.06788: draw (mu, tau, z) from the
prior, simulate binomial groups given them, fit the model, and rank each true value among
``L`` thinned posterior draws. If the program, the priors' encoding and the sampler are
right, every rank is uniform on {0, ..., L}.

* :mod:`shrinksim.sbc.design`: the SBC cells, batches, job settings and config checks;
* :mod:`shrinksim.sbc.fit`: simulate, fit and rank (the fitting jobs);
* :mod:`shrinksim.sbc.calibration`: the ECDF uniformity tests, bands and Holm adjustment;
* :mod:`shrinksim.sbc.plot`: the ECDF figure.
"""
