package store

import (
	"fmt"
	"testing"
)

// Keys made earlier keep their bytes while later ones grow the buffer.
func TestKeyBuf(t *testing.T) {
	var k KeyBuf
	var keys, want []string
	for i := range 200 {
		v := fmt.Sprintf("value-%d", i)
		keys = append(keys, k.Key("prefix:", v))
		want = append(want, "prefix:"+v)
	}
	for i := range keys {
		if keys[i] != want[i] {
			t.Fatalf("key %d = %q, want %q", i, keys[i], want[i])
		}
	}
	k.Reset()
	if got := k.Key("a:", "b"); got != "a:b" {
		t.Fatalf("after Reset: %q", got)
	}
}
