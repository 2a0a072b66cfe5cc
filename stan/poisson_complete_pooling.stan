// Complete pooling of Poisson log-rates: one log-rate mu shared by every group (tau = 0),
// y_g ~ Poisson(exposure_g * exp(mu)).
functions {
#include prior.stanfunctions
}
data {
  int<lower=1> G;
  array[G] int<lower=0> y;
  vector<lower=0>[G] exposure;  // > 0: log(exposure) is the offset
  int<lower=1, upper=4> mu_prior_family;
  vector[3] mu_prior_args;
  int<lower=0, upper=1> compute_log_lik;  // 1: write log_lik; 0: nothing
}
transformed data {
  vector[G] log_exposure = log(exposure);
  for (g in 1:G) if (exposure[g] <= 0) reject("exposure[", g, "] must be > 0");
}
parameters {
  real mu;
}
model {
  mu ~ prior(mu_prior_family, mu_prior_args);
  y ~ poisson_log(log_exposure + mu);
}
generated quantities {
  // Per-group log-likelihood at theta_g = mu (Poisson, normalised) for PSIS-LOO; no RNG.
  vector[compute_log_lik ? G : 0] log_lik;
  if (compute_log_lik) {
    for (g in 1:G) log_lik[g] = poisson_log_lpmf(y[g] | log_exposure[g] + mu);
  }
}
