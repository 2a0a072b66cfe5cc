// Per-outcome form of partial_pooling.stan: the likelihood of brms
// `y ~ 1 + (1 | group)`, family = bernoulli(logit). Same priors, same parameters,
// same posterior; kept as the reference and benchmark baseline.
functions {
#include prior.stanfunctions
}
data {
  int<lower=1> G;
  int<lower=0> N;
  array[N] int<lower=1, upper=G> group;
  array[N] int<lower=0, upper=1> y;
  int<lower=1, upper=4> mu_prior_family;
  vector[3] mu_prior_args;
  int<lower=1, upper=4> tau_prior_family;
  vector[3] tau_prior_args;
}
parameters {
  real mu;
  real<lower=0> tau;
  vector[G] z;
}
model {
  mu ~ prior(mu_prior_family, mu_prior_args);
  tau ~ prior(tau_prior_family, tau_prior_args);
  z ~ std_normal();
  y ~ bernoulli_logit(mu + tau * z[group]);
}
