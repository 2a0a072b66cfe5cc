// Partial pooling of estimates with known standard errors (meta-analysis, eight schools):
// estimate_g ~ Normal(theta_g, se_g). Non-centred, theta = mu + tau * z, derived outside
// Stan from the draws of mu, tau and z (as in partial_pooling.stan); log_lik only when the
// data ask for it (compute_log_lik = 1). Priors are data.
functions {
#include prior.stanfunctions
}
data {
  int<lower=1> G;
  vector[G] estimate;  // each group's estimate
  vector<lower=0>[G] se;  // its known standard error, > 0
  int<lower=1, upper=4> mu_prior_family;
  vector[3] mu_prior_args;
  int<lower=1, upper=4> tau_prior_family;
  vector[3] tau_prior_args;
  int<lower=0, upper=1> compute_log_lik;  // 1: write log_lik; 0: nothing
}
transformed data {
  for (g in 1:G) if (se[g] <= 0) reject("se[", g, "] must be > 0");
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
  estimate ~ normal(mu + tau * z, se);
}
generated quantities {
  // Per-group log-likelihood (normal, normalised) for PSIS-LOO; no RNG, so the draws do not
  // depend on compute_log_lik.
  vector[compute_log_lik ? G : 0] log_lik;
  if (compute_log_lik) {
    for (g in 1:G) log_lik[g] = normal_lpdf(estimate[g] | mu + tau * z[g], se[g]);
  }
}
