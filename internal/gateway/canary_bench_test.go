package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/ration"
	"github.com/warden-gw/warden/internal/store/memory"
)

// insertOne is a seeder that shows one canary-like summary before the
// answer's first record, a fresh id per answer (as canaries differ per
// identity and list).
type insertOne struct{ n *int }

func (s insertOne) Seed(_ *Exchange, res *inspect.Result, _ *inspect.Access) {
	*s.n++
	res.Insert(0, fmt.Appendf(nil, `{"id":"%d","username":"c_%d","full_name":"C","follower_count":1,"is_business":false}`, 1_000_000_000+*s.n, *s.n))
}

// BenchmarkFinishList: Finish of a followers page of 50 records under
// examples/lab.yaml (row e's rules), 1,000 accounts round robin. canary:
// a seeder inserts one record, as on an answer that carries a canary;
// what linking it costs (linkCanaries: InsertedLinks and a second Link
// call) is canary against plain within one run. plain: no seeder, as
// every answer without canaries.
func BenchmarkFinishList(b *testing.B) {
	b.Setenv("LAB_JWT_SECRET", "lab-secret")
	b.Setenv("LAB_PARTNER_KEY", "pk-0123456789abcdef")
	for _, seed := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "canary"}[seed]
		b.Run(name, func(b *testing.B) {
			cfg := labBenchConfig(b)
			rowE(cfg)
			cfg.SetDefaults()
			if err := cfg.Validate(); err != nil {
				b.Fatal(err)
			}
			st := memory.New(memory.Options{SweepEvery: -1})
			b.Cleanup(func() { st.Close() })
			m, err := NewMetrics(prometheus.NewRegistry())
			if err != nil {
				b.Fatal(err)
			}
			var seeders []Seeder
			n := 0
			if seed {
				seeders = []Seeder{insertOne{&n}}
			}
			log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
			p, err := NewPipeline(context.Background(), cfg, Deps{Store: st, Ration: ration.NewMetrics(nil), Metrics: m, Logger: log, Seeders: seeders})
			if err != nil {
				b.Fatal(err)
			}
			body := []byte(`{"users":[`)
			for i := range 50 {
				if i > 0 {
					body = append(body, ',')
				}
				body = fmt.Appendf(body, `{"id":"%d","username":"user_%d","full_name":"User %d","follower_count":3,"is_business":false}`, 100+i, 100+i, 100+i)
			}
			body = append(body, `],"next_cursor":null}`...)
			exs := make([]Exchange, 1000)
			now := time.Now()
			for i := range exs {
				path := "/v1/users/" + strconv.Itoa(5000+i) + "/followers"
				exs[i] = Exchange{ID: "req-" + strconv.Itoa(i), Start: now, Method: "GET", Path: path,
					Identity: identify.Identity{Account: strconv.Itoa(1 + i), IP: netip.MustParseAddr("127.0.0.1")}}
				exs[i].Route, exs[i].Inspect = p.imap.Match("GET", path)
				if !exs[i].Inspect {
					b.Fatal("followers not inspected")
				}
			}
			ctx := context.Background()
			dst := make([]byte, 0, 2*len(body))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				ex := &exs[i%len(exs)]
				out, ref := p.Finish(ctx, ex, Answer{Status: 200, ContentType: "application/json", Body: body, Dst: dst})
				if ref != nil || seed != (out.Body != nil) {
					b.Fatalf("refused %v, rewritten %v", ref, out.Body != nil)
				}
				i++
			}
		})
	}
}
