// Complete pooling of Gaussian outcomes: one mean mu shared by every group (tau = 0) and
// the within-group sd sigma, from each group's (n, mean, sd) (gaussian.stanfunctions).
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
  int<lower=1, upper=4> sigma_prior_family;
  vector[3] sigma_prior_args;
  int<lower=0, upper=1> compute_log_lik;  // 1: write log_lik; 0: nothing
}
transformed data {
  vector[G] n_real = to_vector(n);
}
parameters {
  real mu;
  real<lower=0> sigma;
}
model {
  mu ~ prior(mu_prior_family, mu_prior_args);
  sigma ~ prior(sigma_prior_family, sigma_prior_args);
  target += sum(gaussian_log_lik(y_mean, y_sd, n_real, rep_vector(mu, G), sigma));
}
generated quantities {
  // Per-group log-likelihood at theta_g = mu (normalised) for PSIS-LOO; no RNG.
  vector[compute_log_lik ? G : 0] log_lik;
  if (compute_log_lik) log_lik = gaussian_log_lik(y_mean, y_sd, n_real, rep_vector(mu, G), sigma);
}
