// Per-outcome form of partial_pooling.stan: the likelihood of brms
// `y ~ 1 + (1 | group)`, family = bernoulli(logit). Same priors, same parameters,
// same posterior; kept as the reference and benchmark baseline.
functions {
#include prior.stanfunctions
}
data {
  int<lower=1> G;
  int<lower=0> N;
  array[N] int<lower=1, upper=G> group;
  array[N] int<lower=0, upper=1> y;
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
  y ~ bernoulli_logit(mu + tau * z[group]);
}
generated quantities {
  // Per-group log-likelihood: the sum over the group's outcomes (the binomial one of
  // partial_pooling.stan less log choose(n, y)); no RNG, as there.
  vector[compute_log_lik ? G : 0] log_lik;
  if (compute_log_lik) {
    log_lik = rep_vector(0, G);
    for (i in 1:N) log_lik[group[i]] += bernoulli_logit_lpmf(y[i] | mu + tau * z[group[i]]);
  }
}
