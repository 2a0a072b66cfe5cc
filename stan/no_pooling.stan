// No pooling: every group's log-odds gets its own independent prior (the mu prior),
// like brms `y ~ 0 + factor(group)` with a proper prior on each coefficient.
functions {
#include prior.stanfunctions
}
data {
  int<lower=1> G;
  array[G] int<lower=0> n;
  array[G] int<lower=0> y;
  int<lower=1, upper=4> mu_prior_family;
  vector[3] mu_prior_args;
}
parameters {
  vector[G] theta;
}
model {
  for (g in 1:G) theta[g] ~ prior(mu_prior_family, mu_prior_args);
  y ~ binomial_logit(n, theta);
}
