// gaussian_se_partial_pooling.stan with the group effects integrated out exactly:
// estimate_g ~ Normal(mu, sqrt(tau^2 + se_g^2)) given (mu, tau). Same posterior of (mu, tau);
// theta is drawn in generated quantities from its exact conditional normal, so the draws of
// (mu, tau, theta) are from the same joint posterior. The sampler sees 2 parameters.
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
}
model {
  mu ~ prior(mu_prior_family, mu_prior_args);
  tau ~ prior(tau_prior_family, tau_prior_args);
  estimate ~ normal(mu, sqrt(square(tau) + square(se)));
}
generated quantities {
  // theta_g | mu, tau, data ~ Normal(B_g mu + (1 - B_g) estimate_g, variance se_g^2 tau^2 /
  // (se_g^2 + tau^2)), B_g = se_g^2 / (se_g^2 + tau^2): mean plus sd times a standard normal
  // draw, not normal_rng, whose sd must be > 0 (tau = 0 gives sd 0). log_lik at these theta,
  // as in the non-marginalised program; it uses no further random numbers.
  vector[G] theta;
  vector[compute_log_lik ? G : 0] log_lik;
  {
    vector[G] v = square(se);
    vector[G] b = v ./ (v + square(tau));
    vector[G] sd_cond = sqrt(v * square(tau) ./ (v + square(tau)));
    for (g in 1:G) theta[g] = b[g] * mu + (1 - b[g]) * estimate[g] + sd_cond[g] * std_normal_rng();
  }
  if (compute_log_lik) {
    for (g in 1:G) log_lik[g] = normal_lpdf(estimate[g] | theta[g], se[g]);
  }
}
