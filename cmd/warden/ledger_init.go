package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/ledger/clickhouse"
)

// runLedgerInit: warden ledger init [--config FILE] [--clickhouse ADDR]
// [--print]: creates the ledger's database and tables in ClickHouse when
// missing (it changes nothing that exists), or prints their DDL.
func runLedgerInit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("ledger init", stderr)
	cfgPath := fs.String("config", "examples/lab.yaml", "config file whose ledger.clickhouse is used")
	addr := fs.String("clickhouse", "", "host:port of ClickHouse's HTTP interface (default: ledger.clickhouse.addrs)")
	printDDL := fs.Bool("print", false, "print the schema's DDL instead of running it")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: warden ledger init [--config FILE] [--clickhouse ADDR] [--print]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		return errUsage
	}
	// A config named on the command line must load: a typo in its path or
	// its YAML would otherwise make the schema in the default database,
	// not the fleet's, and say it was ready. The default config (relative
	// to the repository) may be absent: --clickhouse or --print then go
	// on with the defaults.
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })
	var cfg *config.Config
	if c, err := config.Load(*cfgPath); err == nil {
		cfg = c
	} else if explicit || !errors.Is(err, os.ErrNotExist) {
		return err
	} else if *addr == "" && !*printDDL {
		return fmt.Errorf("no ClickHouse: give --clickhouse ADDR, or --config FILE with ledger.clickhouse (the default config %s is not here)", *cfgPath)
	}
	cc := clickhouse.Config{}
	if cfg != nil {
		cc = cfg.Ledger.ClickHouse
		if *addr == "" && !*printDDL && len(cc.Addrs) == 0 {
			return fmt.Errorf("no ClickHouse: %s sets no ledger.clickhouse.addrs; give --clickhouse ADDR", *cfgPath)
		}
	}
	cc.SetDefaults()
	if *printDDL {
		fmt.Fprint(stdout, clickhouse.Schema(cc.Database))
		return nil
	}
	c, err := clickhouseSource(cfg, *addr)
	if err != nil {
		return err
	}
	if err := c.Init(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ledger schema ready in %s\n", c)
	return nil
}
