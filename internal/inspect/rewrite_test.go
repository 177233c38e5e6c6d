package inspect

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestRewriteNotesVary: Rewrite copies the previous note when a record is
// masked alike; records that differ in fields present, field order, rules
// or emptiness must each get their own note.
func TestRewriteNotesVary(t *testing.T) {
	m := labMap(t)
	mt, _ := m.Match("GET", "/v1/users/7/followers")
	body := []byte(`{"users":[` +
		`{"id":"1","username":"a","full_name":"b"},` +
		`{"id":"2","username":"a","full_name":"b"},` +
		`{"id":"3","username":null,"full_name":"b"},` +
		`{"id":"4","full_name":"b","username":"a"},` +
		`{"id":"5","full_name":"b","username":"a"},` +
		`{"id":"6","username":"a","full_name":"b"},` +
		`{"id":"7","username":"a","full_name":"b"},` +
		`{"username":"x"},` +
		`{"username":"x"},` +
		`{"id":"10","username":"","full_name":[]}]}`)
	rules := []string{"r1", "r1", "r1", "r1", "r1", "r2", "r1", "r1", "r1", "r1"}
	want := []map[string]any{
		{"masked": []any{"username", "full_name"}, "rules": []any{"r1"}},
		{"masked": []any{"username", "full_name"}, "rules": []any{"r1"}},
		{"masked": []any{"full_name"}, "rules": []any{"r1"}},
		{"masked": []any{"full_name", "username"}, "rules": []any{"r1"}},
		{"masked": []any{"full_name", "username"}, "rules": []any{"r1"}},
		{"masked": []any{"username", "full_name"}, "rules": []any{"r1", "r2"}},
		{"masked": []any{"username", "full_name"}, "rules": []any{"r1"}},
		{"masked": []any{"username"}, "rules": []any{"r1"}},
		{"masked": []any{"username"}, "rules": []any{"r1"}},
		nil, // nothing present: not masked
	}
	var r Result
	if err := r.Inspect(mt.Route, body); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < r.Len(); i++ {
		r.Mask(i, 0, rules[i])
		if i == 5 {
			r.Mask(i, 0, "r1")
		}
	}
	out := r.Rewrite(nil, "q")
	var got struct{ Users []map[string]any }
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for i, u := range got.Users {
		note, _ := u[NoteMember].(map[string]any)
		if want[i] == nil {
			if note != nil {
				t.Errorf("record %d: note %v, want none", i, note)
			}
			continue
		}
		want[i]["request_id"] = "q"
		if !reflect.DeepEqual(note, want[i]) {
			t.Errorf("record %d: note %v, want %v", i, note, want[i])
		}
	}
}
