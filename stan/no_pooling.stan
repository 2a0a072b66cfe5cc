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
  int<lower=0, upper=1> compute_log_lik;  // 1: write log_lik (your-data fits); 0: nothing
}
parameters {
  vector[G] theta;
}
model {
  for (g in 1:G) theta[g] ~ prior(mu_prior_family, mu_prior_args);
  y ~ binomial_logit(n, theta);
}
generated quantities {
  // Per-group log-likelihood (binomial, normalised) for PSIS-LOO; no RNG.
  vector[compute_log_lik ? G : 0] log_lik;
  if (compute_log_lik) {
    for (g in 1:G) log_lik[g] = binomial_logit_lpmf(y[g] | n[g], theta[g]);
  }
}
