package demo

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/warden-gw/warden/examples"
)

// wardenConfig returns the config warden runs with and the environment it
// needs. The embedded lab config is written to dir with its admin token
// taken from a variable set to a fresh random token, which is also written
// to tokenFile (mode 0600) for `warden ban`. A config of the user's runs as
// it is but for its state directories, which move into dir (freshState;
// moved names them) unless keepState; if it names a token variable that is
// unset, the variable gets the fresh token.
func wardenConfig(file, dir, tokenFile, jwtSecret, partnerKey string, keepState bool) (path string, env []string, moved []string, err error) {
	tok, err := randomToken()
	if err != nil {
		return "", nil, nil, err
	}
	if err := os.WriteFile(tokenFile, []byte(tok+"\n"), 0o600); err != nil {
		return "", nil, nil, fmt.Errorf("write admin token: %w", err)
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", nil, nil, fmt.Errorf("read config: %w", err)
		}
		doc := readLabDoc(b)
		env := doc.secretsEnv(jwtSecret, partnerKey)
		if v := doc.Admin.TokenEnv; v != "" {
			if _, ok := os.LookupEnv(v); !ok {
				env = append(env, v+"="+tok)
			}
		}
		if keepState {
			return file, env, nil, nil
		}
		fresh, moved, err := freshState(b, dir)
		if err != nil {
			return "", nil, nil, fmt.Errorf("--config %s: %w", file, err)
		}
		if len(moved) == 0 {
			return file, env, nil, nil // no state on disk to carry over
		}
		// The copy has the file's name (serve's errors name it), in dir;
		// its relative paths (key files) are read from the working
		// directory, as the file's are.
		cdir := filepath.Join(dir, "config")
		if err := os.Mkdir(cdir, 0o700); err != nil {
			return "", nil, nil, fmt.Errorf("config dir: %w", err)
		}
		path := filepath.Join(cdir, filepath.Base(file))
		if err := os.WriteFile(path, fresh, 0o600); err != nil {
			return "", nil, nil, fmt.Errorf("write config: %w", err)
		}
		return path, env, moved, nil
	}
	src := examples.LabConfig()
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err != nil || len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return "", nil, nil, fmt.Errorf("embedded lab config: not a YAML mapping (%v)", err)
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
	// The store's state on disk and the ledger go in the demo's own
	// directory, so each demo starts afresh (the embedded config's dirs
	// are relative).
	for _, p := range stateKeys {
		key := strings.Join(p, ".")
		if err := setPath(top, p, stateDir(dir, key)); err != nil {
			return "", nil, nil, err
		}
		moved = append(moved, key)
	}
	out, err := yaml.Marshal(&root)
	if err != nil {
		return "", nil, nil, fmt.Errorf("embedded lab config: %w", err)
	}
	path = filepath.Join(dir, "lab.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		return "", nil, nil, fmt.Errorf("write lab config: %w", err)
	}
	return path, append(readLabDoc(src).secretsEnv(jwtSecret, partnerKey), envName+"="+tok), moved, nil
}

// LedgerDir is where a demo run in dir keeps its ledger.
func LedgerDir(dir string) string { return filepath.Join(dir, "warden-ledger") }

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
	Canary struct {
		KeyEnv string `yaml:"key_env"`
	} `yaml:"canary"`
	Ledger struct {
		Dir string `yaml:"dir"`
	} `yaml:"ledger"`
}

// configLedgerDir is the ledger.dir a config file sets, as written.
func configLedgerDir(file string) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	return readLabDoc(b).Ledger.Dir
}

// partnerApp is the app the simulated partner is (sim's partner.key
// default names it too).
const partnerApp = "partner-app"

// partnerKey is the partner's app key: -p partner.key when given, else
// LAB_PARTNER_KEY when set, else a fresh random one.
func partnerKey(params map[string]string) (string, error) {
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
		if k.App == partnerApp && k.KeyEnv != "" {
			env = append(env, k.KeyEnv+"="+partnerKey)
			break
		}
	}
	// Canaries on: a key of the run's own unless the environment has one.
	if v := d.Canary.KeyEnv; v != "" {
		if _, ok := os.LookupEnv(v); !ok {
			if k, err := randomToken(); err == nil {
				env = append(env, v+"=demo-canary-"+k)
			}
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

// setPath sets the scalar at path (keys from the config's top mapping),
// making the mappings on the way.
func setPath(top *yaml.Node, path []string, value string) error {
	node := top
	for _, key := range path[:len(path)-1] {
		next := valueOf(node, key)
		if next == nil {
			next = &yaml.Node{Kind: yaml.MappingNode}
			node.Content = append(node.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, next)
		}
		if next.Kind != yaml.MappingNode {
			return fmt.Errorf("embedded lab config: %s is not a mapping", key)
		}
		node = next
	}
	last := path[len(path)-1]
	for i := 0; i+1 < len(node.Content); i += 2 {
		if node.Content[i].Value == last {
			node.Content[i+1] = &yaml.Node{Kind: yaml.ScalarNode, Value: value}
			return nil
		}
	}
	node.Content = append(node.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: last}, &yaml.Node{Kind: yaml.ScalarNode, Value: value})
	return nil
}
