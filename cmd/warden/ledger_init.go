package main

import (
	"context"
	"fmt"
	"io"

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
	var cfg *config.Config
	if c, err := config.Load(*cfgPath); err == nil {
		cfg = c
	} else if *addr == "" {
		return err
	}
	cc := clickhouse.Config{}
	if cfg != nil {
		cc = cfg.Ledger.ClickHouse
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
