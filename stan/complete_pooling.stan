// Complete pooling: one log-odds mu shared by every group (tau = 0).
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
  real mu;
}
model {
  mu ~ prior(mu_prior_family, mu_prior_args);
  y ~ binomial_logit(n, mu);
}
