// Partial pooling of group means of Gaussian outcomes, y_gi ~ Normal(theta_g, sigma) with
// the within-group sd sigma estimated, from each group's (n, mean, sd): the exact likelihood
// of the raw outcomes (gaussian.stanfunctions). Non-centred, theta = mu + tau * z, derived
// outside Stan from the draws of mu, tau and z (as in partial_pooling.stan); log_lik only
// when the data ask for it (compute_log_lik = 1). Priors are data, sigma's too.
functions {
#include prior.stanfunctions
#include gaussian.stanfunctions
}
data {
  int<lower=1> G;
  array[G] int<lower=1> n;  // outcomes per group
  vector[G] y_mean;  // mean of the group's outcomes
  vector<lower=0>[G] y_sd;  // their sd (divisor n - 1); ignored where n = 1
  int<lower=1, upper=4> mu_prior_family;
  vector[3] mu_prior_args;
  int<lower=1, upper=4> tau_prior_family;
  vector[3] tau_prior_args;
  int<lower=1, upper=4> sigma_prior_family;
  vector[3] sigma_prior_args;
  int<lower=0, upper=1> compute_log_lik;  // 1: write log_lik; 0: nothing
}
transformed data {
  vector[G] n_real = to_vector(n);
}
parameters {
  real mu;
  real<lower=0> tau;
  real<lower=0> sigma;
  vector[G] z;
}
model {
  mu ~ prior(mu_prior_family, mu_prior_args);
  tau ~ prior(tau_prior_family, tau_prior_args);
  sigma ~ prior(sigma_prior_family, sigma_prior_args);
  z ~ std_normal();
  target += sum(gaussian_log_lik(y_mean, y_sd, n_real, mu + tau * z, sigma));
}
generated quantities {
  // Per-group log-likelihood of the group's raw outcomes (normalised) for PSIS-LOO; no RNG,
  // so the draws do not depend on compute_log_lik.
  vector[compute_log_lik ? G : 0] log_lik;
  if (compute_log_lik) log_lik = gaussian_log_lik(y_mean, y_sd, n_real, mu + tau * z, sigma);
}
