package bench

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Row (e-canary) is row (e) with canaries on: examples/lab.yaml's canary
// section, which row (e) leaves out, and a key in the child's environment
// (CanaryKeyEnv), so the difference is what canaries cost the request path
// (the target: within 2% of row (e)).

// CanaryKeyEnv is the variable row (e-canary)'s config names for the key;
// the bench sets it in that child's environment only.
const CanaryKeyEnv = "WARDEN_CANARY_KEY"

// WithCanaries puts src's canary section back into conf (a config
// DeriveLabConfig made from src), its key read from CanaryKeyEnv.
func WithCanaries(conf, src []byte) ([]byte, error) {
	var doc, orig yaml.Node
	if err := yaml.Unmarshal(conf, &doc); err != nil || doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, fmt.Errorf("bench: canaries: config is not one YAML document (%v)", err)
	}
	if err := yaml.Unmarshal(src, &orig); err != nil || orig.Kind != yaml.DocumentNode || len(orig.Content) != 1 {
		return nil, fmt.Errorf("bench: canaries: lab config is not one YAML document (%v)", err)
	}
	c := get(orig.Content[0], "canary")
	if c == nil || c.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("bench: canaries: the lab config has no canary section")
	}
	setScalar(c, "key_env", CanaryKeyEnv)
	root := doc.Content[0]
	drop(root, "canary")
	root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "canary"}, c)
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return nil, fmt.Errorf("bench: canaries: %w", err)
	}
	return out, nil
}
