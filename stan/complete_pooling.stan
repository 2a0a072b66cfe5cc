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
  int<lower=0, upper=1> compute_log_lik;  // 1: write log_lik (your-data fits); 0: nothing
}
parameters {
  real mu;
}
model {
  mu ~ prior(mu_prior_family, mu_prior_args);
  y ~ binomial_logit(n, mu);
}
generated quantities {
  // Per-group log-likelihood at theta_g = mu (binomial, normalised) for PSIS-LOO; no RNG.
  vector[compute_log_lik ? G : 0] log_lik;
  if (compute_log_lik) {
    for (g in 1:G) log_lik[g] = binomial_logit_lpmf(y[g] | n[g], mu);
  }
}
