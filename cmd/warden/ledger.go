package main

import (
	"context"
	"fmt"
	"io"
	"sort"
)

// ledgerCommands are `warden ledger`'s subcommands, one file each.
func ledgerCommands() map[string]command {
	return map[string]command{
		"who-took": {"the identities that were served a subject's data", runWhoTook},
		"took-by":  {"what one identity took: distinct subjects per class, lists", runTookBy},
		"verify":   {"check the sealed partitions' hashes and chain, and every log", runLedgerVerify},
		"init":     {"create the ledger's database and tables in ClickHouse (ledger.clickhouse)", runLedgerInit},
	}
}

// runLedger dispatches `warden ledger SUBCOMMAND`.
func runLedger(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmds := ledgerCommands()
	if len(args) == 0 {
		ledgerUsage(stderr, cmds)
		return errUsage
	}
	c, ok := cmds[args[0]]
	if !ok {
		if asksHelp(args[:1]) || args[0] == "help" {
			ledgerUsage(stdout, cmds) // asked for: not an error, as warden --help
			return nil
		}
		fmt.Fprintf(stderr, "warden ledger: unknown query %q\n", args[0])
		ledgerUsage(stderr, cmds)
		return errUsage
	}
	return c.run(ctx, args[1:], stdout, stderr)
}

func ledgerUsage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: warden ledger QUERY [args] [--ledger DIR | --config FILE] [--from T] [--to T] [--json]\n\nqueries:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nsee also: warden reach, warden explain")
}
