// Package demo runs `warden demo`: the lab platform and warden in front of
// it as child processes, the same simulated mix against each target in
// turn (the platform unprotected, nginx, nginx with a ban list, warden),
// the scores side by side, then platform and gateway left serving until
// the context ends.
//
// warden's ledger goes in the run's own temporary directory, removed with
// it, or in Options.LedgerDir (`--ledger-dir`, passed to `warden serve`;
// it must not exist yet, since the ledger's figures are compared with one
// run's), kept for the query commands; its path is printed while the
// demo serves. The memory store's state goes there too. A config of the
// user's (Options.Config) runs on fresh state as well: its store.memory.dir
// and ledger.dir are replaced, in a copy, by the run's directory, unless
// Options.KeepState (`--keep-state`) asks for them as written.
//
// It must never send traffic anywhere but the loopback servers it started,
// never write a secret into a config file (the admin token and the
// partner's key reach warden through its environment; the token is also
// written to a 0600 file for `warden ban`), and never leave a child
// running once Run returns.
package demo
