package bench

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Row (e-prov) is row (e) with what row (e) leaves out of examples/lab.yaml:
// the budgets that name link provenances and the detector. The detector's
// rules run in shadow mode there: they decide, count and log as enforced
// but ban nothing, so both rows serve the same answers (the load is a few
// accounts reading profiles at machine speed, which the detector would ban
// in a second, and a row of 403s measures nothing) and the difference is
// what provenance and the detector cost the request path (the target:
// within 5% of row (e)).

// withoutProvenanceAndDetector removes the detect section and every budget
// naming a provenance from a lab config's root.
func withoutProvenanceAndDetector(root *yaml.Node) {
	drop(root, "detect")
	r := get(root, "ration")
	if r == nil || r.Kind != yaml.MappingNode {
		return
	}
	b := get(r, "budgets")
	if b == nil || b.Kind != yaml.SequenceNode {
		return
	}
	kept := b.Content[:0:0]
	for _, n := range b.Content {
		if n.Kind == yaml.MappingNode && get(n, "provenance") != nil {
			continue
		}
		kept = append(kept, n)
	}
	b.Content = kept
}

// WithProvenanceAndDetector puts back into conf (a config DeriveLabConfig
// made from src) src's budgets that name provenances and its detect
// section, every detector rule in shadow mode.
func WithProvenanceAndDetector(conf, src []byte) ([]byte, error) {
	var doc, orig yaml.Node
	if err := yaml.Unmarshal(conf, &doc); err != nil || doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, fmt.Errorf("bench: provenance: config is not one YAML document (%v)", err)
	}
	if err := yaml.Unmarshal(src, &orig); err != nil || orig.Kind != yaml.DocumentNode || len(orig.Content) != 1 {
		return nil, fmt.Errorf("bench: provenance: lab config is not one YAML document (%v)", err)
	}
	root, from := doc.Content[0], orig.Content[0]
	det := get(from, "detect")
	if det == nil || det.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("bench: provenance: the lab config has no detect section")
	}
	if rules := get(det, "rules"); rules != nil && rules.Kind == yaml.SequenceNode {
		for _, r := range rules.Content {
			if r.Kind == yaml.MappingNode {
				setScalar(r, "mode", "shadow")
			}
		}
	}
	drop(root, "detect")
	root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "detect"}, det)
	n := 0
	if r := get(from, "ration"); r != nil {
		if b := get(r, "budgets"); b != nil && b.Kind == yaml.SequenceNode {
			dst := get(mapping(root, "ration"), "budgets")
			if dst == nil {
				return nil, fmt.Errorf("bench: provenance: the derived config has no budgets")
			}
			for _, bn := range b.Content {
				if bn.Kind == yaml.MappingNode && get(bn, "provenance") != nil {
					dst.Content = append(dst.Content, bn)
					n++
				}
			}
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("bench: provenance: the lab config has no budget naming a provenance")
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return nil, fmt.Errorf("bench: provenance: %w", err)
	}
	return out, nil
}

// drop removes key from mapping m.
func drop(m *yaml.Node, key string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i:i], m.Content[i+2:]...)
			return
		}
	}
}
