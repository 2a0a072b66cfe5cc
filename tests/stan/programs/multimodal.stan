// Test-only positive control of the convergence flags (issue 14): K independent coordinates,
// each an equal mixture of Normal(-d, s) and Normal(d, s). With d / s = 10 the density between
// the modes is exp(-50) of theirs: a chain stays in the mode its random initial value
// (uniform on (-2, 2)) leads to, so the chains never sample the target.
data {
  int<lower=1> K;
  real<lower=0> d;
  real<lower=0> s;
}
parameters {
  vector[K] theta;
}
model {
  for (k in 1:K) {
    target += log_mix(0.5, normal_lpdf(theta[k] | -d, s), normal_lpdf(theta[k] | d, s));
  }
}
