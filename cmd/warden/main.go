// Command warden is the gateway that rations, records and traces personal
// data served by an API. One binary, one file per subcommand.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/warden-gw/warden/internal/admin"
)

// command is one subcommand: it parses its own flags from args and returns
// an error for the exit status.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() map[string]command {
	return map[string]command{
		"serve":        {"run the gateway", runServe},
		"check-config": {"validate a config file", runCheckConfig},
		"lab-platform": {"run the stand-in platform (or `lab-platform truth`)", runLabPlatform},
		"lab-sim":      {"drive simulated users and harvesters at a URL", runLabSim},
		"demo":         {"platform + gateway + simulated traffic, with a score", runDemo},
		"ban":          {"list, add or remove bans through the admin API", runBan},
		"bench":        {"run the benchmark rows and write bench/results", runBench},
		"ledger":       {"query the access ledger: who-took, took-by, verify; init (ClickHouse)", runLedger},
		"reach":        {"distinct people served content by a set of authors", runReach},
		"audience":     {"distinct people following a set of accounts (the platform's lists)", runAudience},
		"explain":      {"the decision on one request, from the ledger", runExplain},
		"trace":        {"name who a leaked copy was taken by: canaries and ledger coverage", runTrace},
		"replay":       {"replay the ledger through a new config: who would be refused or masked", runReplay},
	}
}

// errUsage marks an error already explained to the user (exit status 2).
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 {
		usage(stderr, cmds)
		return 2
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" { // asked for: not an error
		usage(stdout, cmds)
		return 0
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "warden: unknown command %q\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := c.run(ctx, args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) || errors.Is(err, errUsage) {
			if asksHelp(args[1:]) { // the usage was asked for and printed
				return 0
			}
			return 2
		}
		name := args[0]
		if _, ok := ledgerCommands()[arg(args, 1)]; ok && name == "ledger" {
			name += " " + args[1] // "warden ledger who-took: ...", which query failed
		}
		// An error of the package the command is named after says so
		// already ("audience: followers of ..."): said once.
		fmt.Fprintf(stderr, "warden %s: %s\n", name, strings.TrimPrefix(cliMessage(err), name+": "))
		return 1
	}
	return 0
}

// asksHelp reports whether args ask for a command's usage (-h, -help or
// --help before any "--"): its flag set then prints it and stops, which is
// no error.
func asksHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: warden COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-13s %s\n", n, cmds[n].summary)
	}
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("warden "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// cliMessage is err as the command line prints it. The query commands
// share their errors with the admin API, where "bad request: " and "not
// found: " choose the answer's status; here the exit status says that,
// and the message starts with what was wrong.
func cliMessage(err error) string {
	msg := err.Error()
	for _, cat := range []error{admin.ErrBadRequest, admin.ErrNotFound} {
		if errors.Is(err, cat) {
			msg = strings.TrimPrefix(msg, cat.Error()+": ")
		}
	}
	return msg
}

// arg is args[i], or "" past its end.
func arg(args []string, i int) string {
	if i < len(args) {
		return args[i]
	}
	return ""
}
