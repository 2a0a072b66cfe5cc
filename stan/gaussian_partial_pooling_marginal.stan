// gaussian_partial_pooling.stan with the group effects integrated out exactly: the group
// means are independent given (mu, tau, sigma), mean_g ~ Normal(mu, sqrt(tau^2 + sigma^2 / n_g)),
// and the within-group term of the raw outcomes' likelihood, which does not involve theta,
// stays. Same posterior of (mu, tau, sigma); theta is drawn in generated quantities from its
// exact conditional normal, so the draws of (mu, tau, sigma, theta) are from the same joint
// posterior. The sampler sees 3 parameters whatever G.
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
  real within_ss = dot_product(n_real - 1, square(y_sd));  // within-group sum of squares
  real within_df = sum(n_real) - G;
}
parameters {
  real mu;
  real<lower=0> tau;
  real<lower=0> sigma;
}
model {
  mu ~ prior(mu_prior_family, mu_prior_args);
  tau ~ prior(tau_prior_family, tau_prior_args);
  sigma ~ prior(sigma_prior_family, sigma_prior_args);
  y_mean ~ normal(mu, sqrt(square(tau) + square(sigma) ./ n_real));
  // the sd term: -(n - 1) log sigma - (n - 1) sd^2 / (2 sigma^2), summed over the groups
  target += -within_df * log(sigma) - within_ss / (2 * square(sigma));
}
generated quantities {
  // theta_g | mu, tau, sigma, data ~ Normal(B_g mu + (1 - B_g) mean_g, v_g tau^2 / (v_g + tau^2)),
  // v_g = sigma^2 / n_g, B_g = v_g / (v_g + tau^2): mean plus sd times a standard normal
  // draw, not normal_rng, whose sd must be > 0 (tau = 0 gives sd 0). log_lik at these theta,
  // as in the non-marginalised program; it uses no further random numbers.
  vector[G] theta;
  vector[compute_log_lik ? G : 0] log_lik;
  {
    vector[G] v = square(sigma) ./ n_real;
    vector[G] b = v ./ (v + square(tau));
    vector[G] sd_cond = sqrt(v * square(tau) ./ (v + square(tau)));
    for (g in 1:G) theta[g] = b[g] * mu + (1 - b[g]) * y_mean[g] + sd_cond[g] * std_normal_rng();
  }
  if (compute_log_lik) log_lik = gaussian_log_lik(y_mean, y_sd, n_real, theta, sigma);
}
