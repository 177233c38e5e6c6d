package trace

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// ndjsonCopy is n lab-shaped full profiles, one a line.
func ndjsonCopy(n int) []byte {
	var b bytes.Buffer
	bio := strings.Repeat("Weekend hiker, weekday dreamer. ", 8)
	for i := range n {
		fmt.Fprintf(&b, `{"id":"%d","username":"lena.morgan_%d","full_name":"Lena Morgan","bio":"%s","city":"Berlin","category":"Artist","is_business":false,"follower_count":%d,"following_count":12,"posts_count":3,"created_at":"2025-01-02T03:04:05Z","email":"lena.morgan%d@mail.example","phone":"+4915123%06d"}`+"\n",
			i+1, i*7919%16777216, bio, i%977, i, i%524288)
	}
	return b.Bytes()
}

// BenchmarkScanNDJSON: the JSON scanner alone, one core (bytes/s is the
// figure: go test -bench ScanNDJSON -benchmem ./internal/trace).
func BenchmarkScanNDJSON(b *testing.B) {
	data := ndjsonCopy(20000)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	n := 0
	for b.Loop() {
		scanJSON(data, func(*Record) { n++ })
	}
}

// BenchmarkTraceNDJSON: a whole read with the tally (canaries off), on
// every core.
func BenchmarkTraceNDJSON(b *testing.B) {
	data := ndjsonCopy(100000)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		t := New(nil, 0)
		if _, err := t.Read(bytes.NewReader(data), nil); err != nil {
			b.Fatal(err)
		}
	}
}
