// Complete pooling of estimates with known standard errors: one effect mu shared by every
// group (tau = 0, the fixed-effect meta-analysis), estimate_g ~ Normal(mu, se_g).
functions {
#include prior.stanfunctions
}
data {
  int<lower=1> G;
  vector[G] estimate;  // each group's estimate
  vector<lower=0>[G] se;  // its known standard error, > 0
  int<lower=1, upper=4> mu_prior_family;
  vector[3] mu_prior_args;
  int<lower=0, upper=1> compute_log_lik;  // 1: write log_lik; 0: nothing
}
transformed data {
  for (g in 1:G) if (se[g] <= 0) reject("se[", g, "] must be > 0");
}
parameters {
  real mu;
}
model {
  mu ~ prior(mu_prior_family, mu_prior_args);
  estimate ~ normal(mu, se);
}
generated quantities {
  // Per-group log-likelihood at theta_g = mu (normal, normalised) for PSIS-LOO; no RNG.
  vector[compute_log_lik ? G : 0] log_lik;
  if (compute_log_lik) {
    for (g in 1:G) log_lik[g] = normal_lpdf(estimate[g] | mu, se[g]);
  }
}
