// No pooling of group means of Gaussian outcomes: every theta_g with its own independent
// prior (the mu prior), one within-group sd sigma shared by all groups, from each group's
// (n, mean, sd) (gaussian.stanfunctions).
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
  vector[G] theta;
  real<lower=0> sigma;
}
model {
  for (g in 1:G) theta[g] ~ prior(mu_prior_family, mu_prior_args);
  sigma ~ prior(sigma_prior_family, sigma_prior_args);
  target += sum(gaussian_log_lik(y_mean, y_sd, n_real, theta, sigma));
}
generated quantities {
  // Per-group log-likelihood of the group's raw outcomes (normalised) for PSIS-LOO; no RNG.
  vector[compute_log_lik ? G : 0] log_lik;
  if (compute_log_lik) log_lik = gaussian_log_lik(y_mean, y_sd, n_real, theta, sigma);
}
