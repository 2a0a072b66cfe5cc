// Test-only positive control of the convergence flags (issue 14): the CENTRED
// parameterisation of stan/partial_pooling.stan (same data, same posterior). At small n and
// small tau its posterior is a funnel that NUTS cannot explore (divergences, low E-BFMI,
// sticky tau). z is derived so that shrinksim.fitting reads its draws like the real program's.
functions {
#include ../../../stan/prior.stanfunctions
}
data {
  int<lower=1> G;
  array[G] int<lower=0> n;
  array[G] int<lower=0> y;
  int<lower=1, upper=4> mu_prior_family;
  vector[3] mu_prior_args;
  int<lower=1, upper=4> tau_prior_family;
  vector[3] tau_prior_args;
}
parameters {
  real mu;
  real<lower=0> tau;
  vector[G] theta;
}
model {
  mu ~ prior(mu_prior_family, mu_prior_args);
  tau ~ prior(tau_prior_family, tau_prior_args);
  theta ~ normal(mu, tau);
  y ~ binomial_logit(n, theta);
}
generated quantities {
  vector[G] z = (theta - mu) / tau;
}
