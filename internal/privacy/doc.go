// Package privacy gives researchers answers with differential privacy:
// exact samplers of discrete Laplace and discrete Gaussian noise (Canonne,
// Kamath and Steinke 2020, "The Discrete Gaussian for Differential
// Privacy"), the calibration of that noise to a count's user-level
// sensitivity, confidence intervals, and each researcher's privacy budget,
// kept in a file beside the ledger (Budgets) or by any Keeper (the
// ledger's ClickHouse keeps one for a fleet: clickhouse.Budgets), which
// seeds noise with Seed so that keepers with one key answer alike.
//
// Accounting is in zero-concentrated DP (rho-zCDP, Bun and Steinke 2016):
// a discrete Gaussian answer of parameter rho costs rho; a pure
// epsilon-DP discrete Laplace answer costs epsilon^2/2 (it is also
// epsilon^2/2-zCDP). Costs add up across a researcher's answers, so the
// whole of them is limit-zCDP, and so (epsilon, delta)-DP for every delta.
//
// It must never:
//   - use floating point to sample: every sampler works on integers and
//     math/big rationals (Mironov 2012: the flaws of floating-point noise
//     leak the value it hides); floats only describe an answer (its
//     confidence interval), never draw one;
//   - answer past a researcher's budget, or answer before the charge is on
//     disk (the budget file is written aside, fsynced and renamed under a
//     lock, then the answer is given);
//   - charge twice for the same query, or answer it twice with different
//     noise: a repeat returns the answer already given, free (a fresh draw
//     would let a researcher average the noise away);
//   - keep or print the exact value behind a noisy answer.
package privacy
