package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/warden-gw/warden/internal/lab/nginx"
	"github.com/warden-gw/warden/internal/lab/sim"
)

// runDemo starts the lab platform and warden in front of it as child
// processes, drives the same mix at both (without and with warden), prints
// the scores side by side, then keeps both serving until interrupted.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	dur := fs.Duration("duration", 30*time.Second, "length of each run (one without warden, one with)")
	scen := fs.String("scenario", sim.DefaultMix, "the mix: "+strings.Join(sim.Names(), ", ")+", or all")
	profiles := fs.Int("profiles", 100_000, "profiles on the lab platform")
	seed := fs.Int64("seed", 1, "lab platform seed")
	secret := fs.String("jwt-secret", "lab-secret", "lab platform token secret")
	platAddr := fs.String("platform-addr", "127.0.0.1:8081", "lab platform address")
	gwAddr := fs.String("listen", "127.0.0.1:8080", "warden address")
	adminAddr := fs.String("admin-listen", "127.0.0.1:9090", "warden admin address")
	configFile := fs.String("config", "", "warden config (default: the embedded copy of examples/lab.yaml)")
	compare := fs.String("compare", "platform,warden", "targets to run the mix against, in order: platform (no protection), nginx (limit_req per IP), nginx-ban (limit_req and a ban list of the addresses nginx refused most), warden")
	nginxRate := fs.Float64("nginx-rate", 10, "nginx limit_req rate per IP (requests/s)")
	nginxBurst := fs.Int("nginx-burst", 20, "nginx limit_req burst")
	banMin := fs.Int64("ban-min", 20, "nginx-ban: ban addresses refused at least this often in the nginx run")
	maxReq := fs.Int64("max-requests", 2_000_000, "most requests per population per run")
	jsonOut := fs.String("json", "", "write the scores as JSON to this file")
	mdOut := fs.String("markdown", "", "write the comparison table (Markdown, with the command) to this file")
	exit := fs.Bool("exit", false, "exit after the score instead of serving until interrupted")
	params := paramFlags{}
	fs.Var(params, "p", "scenario parameter NAME.KEY=VALUE (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "warden demo: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	names, err := sim.ParseScenarios(*scen)
	if err != nil {
		return err
	}
	targets := strings.Split(*compare, ",")
	for _, t := range targets {
		switch t {
		case "platform", "nginx", "nginx-ban", "warden":
		default:
			return fmt.Errorf("--compare: unknown target %q", t)
		}
	}
	needWarden := !*exit || contains(targets, "warden")
	cfgName := "examples/lab.yaml"
	if *configFile != "" {
		cfgName = filepath.Base(*configFile)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	dir, err := os.MkdirTemp("", "warden-demo-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	tokenFile := filepath.Join(dir, "admin-token")

	var children []*child
	defer func() {
		for i := len(children) - 1; i >= 0; i-- {
			children[i].stop()
		}
	}()
	fmt.Fprintf(stderr, "starting the lab platform (%d profiles, seed %d) on %s\n", *profiles, *seed, *platAddr)
	plat, err := startChild(ctx, "lab-platform", exe, []string{"lab-platform", "--addr", *platAddr,
		"--profiles", strconv.Itoa(*profiles), "--seed", strconv.FormatInt(*seed, 10), "--jwt-secret", *secret},
		nil, regexp.MustCompile(`lab-platform listening on (\S+)`), 2*time.Minute)
	if err != nil {
		return err
	}
	children = append(children, plat)
	platURL := "http://" + plat.addr

	// The approved partner's app key: registered with warden through the
	// variable its config names, and sent by the simulated partner.
	partnerKey, err := demoPartnerKey(params)
	if err != nil {
		return err
	}
	if contains(names, "partner") {
		params["partner.key"] = partnerKey
	}

	var gw *child
	gwURL, adminURL := "", ""
	if needWarden {
		cfg, env, err := demoConfig(*configFile, dir, tokenFile, *secret, partnerKey)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "starting warden on %s (config %s)\n", *gwAddr, cfgName)
		gw, err = startChild(ctx, "warden serve", exe, []string{"serve", "--config", cfg, "--listen", *gwAddr,
			"--upstream", platURL, "--admin-listen", *adminAddr}, env,
			regexp.MustCompile(`warden listening on (\S+)`), 30*time.Second)
		if err != nil {
			return err
		}
		children = append(children, gw)
		gwURL = "http://" + gw.addr
		adminURL = "http://" + *adminAddr
		if m := regexp.MustCompile(`admin (\d[^\s,)]*)`).FindStringSubmatch(gw.ready); m != nil {
			adminURL = "http://" + m[1]
		}
	}

	fmt.Fprintln(stderr, "computing ground truth")
	truth, err := computeTruth(*profiles, *seed)
	if err != nil {
		return err
	}

	var reps []*sim.Report
	var labels []string
	var lastNginx *sim.Report
	for _, t := range targets {
		target := ""
		var ng *nginx.Server
		switch t {
		case "platform":
			target = platURL
		case "warden":
			target = gwURL
		case "nginx", "nginx-ban":
			var deny []string
			if t == "nginx-ban" {
				if lastNginx == nil {
					return errors.New("--compare: nginx-ban needs an nginx run before it (its ban list is what nginx refused most)")
				}
				deny = banList(lastNginx, *banMin)
			}
			ng, err = nginx.Start(ctx, nginx.Config{Listen: "127.0.0.1:0", Upstream: platURL,
				RatePerSecond: *nginxRate, Burst: *nginxBurst, Deny: deny, Dir: filepath.Join(dir, t), Workers: 1})
			if err != nil {
				return err
			}
			target = ng.URL()
		}
		label := targetLabel(t, *nginxRate, *nginxBurst, cfgName)
		fmt.Fprintf(stderr, "running %s for %s against %s (%s)\n", strings.Join(names, ","), *dur, label, target)
		rep, err := sim.Run(ctx, sim.Options{Target: target, Scenarios: names, Params: params, Duration: *dur,
			MaxRequests: *maxReq, Truth: truth, JWTSecret: *secret, Seed: uint64(*seed), Progress: progressPrinter(stderr)})
		endProgress(stderr)
		if ng != nil {
			ng.Stop()
		}
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return errors.New("interrupted")
		}
		if t == "nginx" {
			lastNginx = rep
		}
		if t == "nginx-ban" {
			label += fmt.Sprintf(" (%d addresses)", len(banList(lastNginx, *banMin)))
		}
		reps = append(reps, rep)
		labels = append(labels, label)
	}

	fmt.Fprintf(stdout, "\n%s, %d profiles, %s per run\n\n", strings.Join(names, ","), *profiles, *dur)
	if err := sim.WriteComparison(stdout, labels, reps); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "\nharvest: distinct real profiles whose true email and phone reached the harvester (% of all).")
	fmt.Fprintln(stdout, "harm: users (and requests) of a legitimate population that got a refusal or a masked field.")
	if *jsonOut != "" {
		if err := writeJSONFile(*jsonOut, map[string]any{"labels": labels, "reports": reps}); err != nil {
			return err
		}
	}
	if *mdOut != "" {
		if err := writeMarkdown(*mdOut, args, labels, reps); err != nil {
			return err
		}
	}
	if *exit {
		return nil
	}
	fmt.Fprintf(stdout, "\nlab platform: %s\n", platURL)
	if gw != nil {
		fmt.Fprintf(stdout, "warden:       %s (admin %s, token in %s)\n", gwURL, adminURL, tokenFile)
	}
	fmt.Fprintln(stdout, "serving until Ctrl-C")
	<-ctx.Done()
	return nil
}

// banList is what an operator would ban after reading nginx's logs: the
// addresses refused at least min times, except the approved partner's
// servers, which the operator knows.
func banList(rep *sim.Report, min int64) []string {
	var out []string
	for _, a := range rep.Offenders(min) {
		if sim.ScenarioOf(a) != "partner" {
			out = append(out, a)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func targetLabel(t string, rate float64, burst int, cfg string) string {
	switch t {
	case "platform":
		return "without protection"
	case "nginx":
		return fmt.Sprintf("nginx limit_req %g r/s per IP, burst %d", rate, burst)
	case "nginx-ban":
		return fmt.Sprintf("nginx limit_req %g r/s, burst %d, ban list", rate, burst)
	}
	return "with warden (" + cfg + ")"
}

// demoConfig returns the config warden runs with and the environment it
// needs. The embedded lab config is written to dir with its admin token
// taken from a variable set to a fresh random token, which is also written
// to tokenFile (mode 0600) for `warden ban`. A config of the user's runs as
// it is; if it names a token variable that is unset, the variable gets
// the fresh token.
func demoConfig(file, dir, tokenFile, jwtSecret, partnerKey string) (string, []string, error) {
	tok, err := randomToken()
	if err != nil {
		return "", nil, err
	}
	if err := os.WriteFile(tokenFile, []byte(tok+"\n"), 0o600); err != nil {
		return "", nil, fmt.Errorf("write admin token: %w", err)
	}
	src := sim.LabConfig
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", nil, fmt.Errorf("read config: %w", err)
		}
		doc := readLabDoc(b)
		env := doc.secretsEnv(jwtSecret, partnerKey)
		if v := doc.Admin.TokenEnv; v != "" {
			if _, ok := os.LookupEnv(v); !ok {
				env = append(env, v+"="+tok)
			}
		}
		return file, env, nil
	}
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err != nil || len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return "", nil, fmt.Errorf("embedded lab config: not a YAML mapping (%v)", err)
	}
	const envName = "WARDEN_DEMO_ADMIN_TOKEN"
	top := root.Content[0]
	var admin *yaml.Node
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value == "admin" && top.Content[i+1].Kind == yaml.MappingNode {
			admin = top.Content[i+1]
		}
	}
	if admin == nil {
		admin = &yaml.Node{Kind: yaml.MappingNode}
		top.Content = append(top.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "admin"}, admin)
	}
	var kept []*yaml.Node
	for i := 0; i+1 < len(admin.Content); i += 2 {
		if k := admin.Content[i].Value; k != "token_file" && k != "token_env" {
			kept = append(kept, admin.Content[i], admin.Content[i+1])
		}
	}
	admin.Content = append(kept, &yaml.Node{Kind: yaml.ScalarNode, Value: "token_env"},
		&yaml.Node{Kind: yaml.ScalarNode, Value: envName})
	out, err := yaml.Marshal(&root)
	if err != nil {
		return "", nil, fmt.Errorf("embedded lab config: %w", err)
	}
	path := filepath.Join(dir, "lab.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		return "", nil, fmt.Errorf("write lab config: %w", err)
	}
	return path, append(readLabDoc(src).secretsEnv(jwtSecret, partnerKey), envName+"="+tok), nil
}

// labDoc is the part of a config the demo reads: where secrets come from.
type labDoc struct {
	Admin struct {
		TokenEnv string `yaml:"token_env"`
	} `yaml:"admin"`
	Identity struct {
		App struct {
			Keys []struct {
				App    string `yaml:"app"`
				KeyEnv string `yaml:"key_env"`
			} `yaml:"keys"`
		} `yaml:"app"`
		Account struct {
			SecretEnv string `yaml:"secret_env"`
		} `yaml:"account"`
	} `yaml:"identity"`
}

// demoPartner is the app the simulated partner is (sim's partner.key
// default names it too).
const demoPartner = "partner-app"

// demoPartnerKey is the partner's app key: -p partner.key when given, else
// LAB_PARTNER_KEY when set, else a fresh random one.
func demoPartnerKey(params paramFlags) (string, error) {
	if k := params["partner.key"]; k != "" {
		return k, nil
	}
	if k := os.Getenv("LAB_PARTNER_KEY"); k != "" {
		return k, nil
	}
	k, err := randomToken()
	if err != nil {
		return "", fmt.Errorf("partner key: %w", err)
	}
	return "pk-" + k, nil
}

func readLabDoc(b []byte) labDoc {
	var d labDoc
	_ = yaml.Unmarshal(b, &d) // serve reports config errors itself
	return d
}

// secretsEnv gives the gateway the lab platform's JWT secret, unless the
// environment already sets the variable the config names for it, and the
// partner's app key through the variable the config names for that
// (overriding the environment, so the gateway and the simulated partner
// always agree).
func (d labDoc) secretsEnv(jwtSecret, partnerKey string) []string {
	var env []string
	if v := d.Identity.Account.SecretEnv; v != "" {
		if _, ok := os.LookupEnv(v); !ok {
			env = append(env, v+"="+jwtSecret)
		}
	}
	for _, k := range d.Identity.App.Keys {
		if k.App == demoPartner && k.KeyEnv != "" {
			env = append(env, k.KeyEnv+"="+partnerKey)
			break
		}
	}
	return env
}

func randomToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func writeJSONFile(path string, v any) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	enc := newJSONEncoder(f)
	if err := enc.Encode(v); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

func writeMarkdown(path string, args, labels []string, reps []*sim.Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Command: `warden demo %s`\n\n", strings.Join(args, " "))
	if len(reps) > 0 {
		fmt.Fprintf(&b, "%d profiles, mix %s, %s per run, %s, %s.\n\n", reps[0].Profiles, strings.Join(reps[0].Scenarios, ","),
			reps[0].DurationBound, time.Now().UTC().Format("2006-01-02"), machine())
	}
	if err := sim.WriteComparison(&b, labels, reps); err != nil {
		return err
	}
	b.WriteString("\nharvest: distinct real profiles whose true email and phone reached the harvester, as % of all profiles (count).\n")
	b.WriteString("harm: % of a legitimate population's active users (and of its requests) that got a refusal (403/429/503) or a masked email/phone.\n")
	b.WriteString("Targets: *without protection* is the lab platform itself; *nginx* is Debian's nginx with `limit_req` per client address " +
		"(nodelay, 429) and upstream keep-alive; *ban list* adds `deny` for every address nginx refused at least --ban-min (default 20) times in the nginx run " +
		"(what an operator reading the logs would ban), except the approved partner's servers; *warden* is `warden serve` with examples/lab.yaml.\n")
	b.WriteString("Harvesters are paced (see `go doc ./internal/lab/sim`), so columns differ by the protection, not by load; " +
		"on a busy machine a paced population may fall short of its rate, so compare requests too.\n")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// machine describes this machine in a few words for a result file.
func machine() string {
	cpu := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				_, cpu, _ = strings.Cut(l, ": ")
				break
			}
		}
	}
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			load = ", load average " + strings.Join(f[:3], " ") + " at the end"
		}
	}
	return fmt.Sprintf("%d CPUs (%s)%s", numCPU(), strings.TrimSpace(cpu), load)
}

// child is a subprocess of this binary that prints a readiness line.
type child struct {
	name  string
	cmd   *exec.Cmd
	addr  string
	ready string // the readiness line
	done  chan struct{}
	err   error

	mu   sync.Mutex
	tail []string // last lines of its output, for error messages
}

func (c *child) remember(line string) {
	c.mu.Lock()
	c.tail = append(c.tail, line)
	if len(c.tail) > 20 {
		c.tail = c.tail[len(c.tail)-20:]
	}
	c.mu.Unlock()
}

func (c *child) lastLines() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.tail, "\n")
}

// startChild runs exe args and waits for a line matching ready, whose
// first group is the address it listens on.
func startChild(ctx context.Context, name, exe string, args, env []string, ready *regexp.Regexp, timeout time.Duration) (*child, error) {
	c := &child{name: name, done: make(chan struct{})}
	c.cmd = exec.Command(exe, args...)
	c.cmd.Env = append(os.Environ(), env...)
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	pr, pw := io.Pipe()
	c.cmd.Stdout, c.cmd.Stderr = pw, pw
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		pw.Close()
		close(c.done)
	}()
	addrc := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		found := false
		for sc.Scan() {
			line := sc.Text()
			c.remember(line)
			if !found {
				if m := ready.FindStringSubmatch(line); m != nil {
					found = true
					addrc <- []string{m[1], line}
				}
			}
		}
		io.Copy(io.Discard, pr) // keep draining so the child never blocks
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case m := <-addrc:
		a := m[0]
		c.addr, c.ready = a, m[1]
		if _, _, err := net.SplitHostPort(a); err != nil {
			c.stop()
			return nil, fmt.Errorf("%s: readiness line has no address: %q", name, a)
		}
		return c, nil
	case <-c.done:
		return nil, fmt.Errorf("%s exited before it was ready (%v):\n%s", name, c.err, c.lastLines())
	case <-t.C:
		c.stop()
		return nil, fmt.Errorf("%s not ready after %s:\n%s", name, timeout, c.lastLines())
	case <-ctx.Done():
		c.stop()
		return nil, ctx.Err()
	}
}

// stop asks the child to end (SIGTERM), then kills it after 10 s.
func (c *child) stop() {
	if c.cmd.Process == nil {
		return
	}
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.done
	}
}

func newJSONEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc
}

func numCPU() int { return runtime.NumCPU() }
