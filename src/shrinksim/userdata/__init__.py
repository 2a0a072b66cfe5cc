"""Your design, your data: the user's groups (binomial, poisson, gaussian, or gaussian
estimates with known standard errors: gaussian_se) fitted under each prior (and the
baselines) by their family's programs, then a design-matched simulation at exactly their
group sizes and a what-if over scaled sizes.

Modules, in the order the workflow uses them (``workflow/rules/userdata.smk``):

* :mod:`~shrinksim.userdata.read` and :mod:`~shrinksim.userdata.load`: read and check the
  user's file (:class:`~shrinksim.userdata.read.UserDataError` names file, row and column)
  in one of the forms its family allows (:mod:`~shrinksim.userdata.forms`, the registry;
  :mod:`~shrinksim.userdata.rows` and :mod:`~shrinksim.userdata.values` apply it);
* :mod:`~shrinksim.userdata.outcome`: the family the prepared groups are fitted as, its
  population (mu, sigma) and theory curve;
* :mod:`~shrinksim.userdata.design`: design planning (sizes, control group, true tau values,
  seed keys, the group size for a target shrinkage) and the ``userdata:`` settings checks;
* :mod:`~shrinksim.userdata.fit`: the fits of the user's data and of the design-matched
  data sets;
* :mod:`~shrinksim.userdata.inference`: the fits of the user's data as ArviZ InferenceData
  (netCDF) and their PSIS-LOO comparison;
* :mod:`~shrinksim.userdata.study`: the design-matched summaries and the what-if answer;
* :mod:`~shrinksim.userdata.plot` and :mod:`~shrinksim.userdata.page`: figures and the
  summary page.

Their tables are in :mod:`shrinksim.tables` (``USER_DATA`` ... ``USER_LOO``).
"""
