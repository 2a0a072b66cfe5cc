// Partial pooling of group log-rates from Poisson counts and exposures (sufficient
// statistics): y_g ~ Poisson(exposure_g * exp(theta_g)). Non-centred, theta = mu + tau * z,
// derived outside Stan from the draws of mu, tau and z (as in partial_pooling.stan); the
// per-group log-likelihood log_lik only when the data ask for it (compute_log_lik = 1).
functions {
#include prior.stanfunctions
}
data {
  int<lower=1> G;
  array[G] int<lower=0> y;
  vector<lower=0>[G] exposure;  // > 0: log(exposure) is the offset
  int<lower=1, upper=4> mu_prior_family;
  vector[3] mu_prior_args;
  int<lower=1, upper=4> tau_prior_family;
  vector[3] tau_prior_args;
  int<lower=0, upper=1> compute_log_lik;  // 1: write log_lik; 0: nothing
}
transformed data {
  vector[G] log_exposure = log(exposure);
  for (g in 1:G) if (exposure[g] <= 0) reject("exposure[", g, "] must be > 0");
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
  y ~ poisson_log(log_exposure + mu + tau * z);
}
generated quantities {
  // Per-group log-likelihood (Poisson, normalised) for PSIS-LOO; no RNG, so the draws do
  // not depend on compute_log_lik.
  vector[compute_log_lik ? G : 0] log_lik;
  if (compute_log_lik) {
    for (g in 1:G) log_lik[g] = poisson_log_lpmf(y[g] | log_exposure[g] + mu + tau * z[g]);
  }
}
