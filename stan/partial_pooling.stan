// Partial pooling of group log-odds from binomial counts (sufficient statistics).
// Non-centred: theta = mu + tau * z. theta is derived outside Stan from the draws of
// mu, tau and z, so only parameters are written (fast output on both engines); the
// per-group log-likelihood log_lik only when the data ask for it (compute_log_lik = 1).
// Priors are data (family code + arguments) so one compiled program serves every prior.
functions {
#include prior.stanfunctions
}
data {
  int<lower=1> G;
  array[G] int<lower=0> n;
  array[G] int<lower=0> y;
  int<lower=1, upper=4> mu_prior_family;
  vector[3] mu_prior_args;
  int<lower=1, upper=4> tau_prior_family;
  vector[3] tau_prior_args;
  int<lower=0, upper=1> compute_log_lik;  // 1: write log_lik (your-data fits); 0: nothing
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
  y ~ binomial_logit(n, mu + tau * z);
}
generated quantities {
  // Per-group log-likelihood (binomial, normalised) for PSIS-LOO; no RNG is used, so the
  // draws do not depend on compute_log_lik.
  vector[compute_log_lik ? G : 0] log_lik;
  if (compute_log_lik) {
    for (g in 1:G) log_lik[g] = binomial_logit_lpmf(y[g] | n[g], mu + tau * z[g]);
  }
}
