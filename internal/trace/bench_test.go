package trace

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/canary"
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
	benchScan(b, ndjsonCopy(20000))
}

// BenchmarkTraceNDJSON: a whole read with the tally (canaries off), on
// every core.
func BenchmarkTraceNDJSON(b *testing.B) {
	benchRead(b, ndjsonCopy(100000))
}

// benchScan runs the JSON scanner alone over data, one core.
func benchScan(b *testing.B, data []byte) {
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	n := 0
	cpu0 := cpuTime(b)
	for b.Loop() {
		scanJSON(data, func(*Record) { n++ })
	}
	reportPerCore(b, int64(len(data))*int64(b.N), cpuTime(b)-cpu0)
}

// benchRead reads data whole with the tally (canaries off), on every core.
func benchRead(b *testing.B, data []byte) {
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	cpu0 := cpuTime(b)
	for b.Loop() {
		t := New(nil, 0)
		if _, err := t.Read(bytes.NewReader(data), nil); err != nil {
			b.Fatal(err)
		}
	}
	reportPerCore(b, int64(len(data))*int64(b.N), cpuTime(b)-cpu0)
}

// cpuTime is the CPU time (user and system) the process has spent.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportPerCore reports bytes read per CPU second, "MB/cpu-s": the figure
// per core the target is set in, which wall time on a shared machine
// (other processes taking cores) cannot give.
func reportPerCore(b *testing.B, n int64, cpu time.Duration) {
	if cpu > 0 {
		b.ReportMetric(float64(n)/1e6/cpu.Seconds(), "MB/cpu-s")
	}
}

// contactCopy is n records as a leaked contact database keeps them (the
// shape of BenchmarkTraceLeak's copy): id, username, e-mail, phone.
func contactCopy(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, `{"id":"%d","username":"lena.morgan_%d","email":"lena.morgan%d@mail.example","phone":"+4915123%06d"}`+"\n",
			i+1, i*7919%16777216, i, i%524288)
	}
	return b.Bytes()
}

// BenchmarkTraceContacts: BenchmarkTraceNDJSON on short records, where
// the work per record (not per byte) is most of it.
func BenchmarkTraceContacts(b *testing.B) {
	benchRead(b, contactCopy(500000))
}

// BenchmarkScanContacts: the JSON scanner alone on contactCopy's short
// records, one core.
func BenchmarkScanContacts(b *testing.B) {
	benchScan(b, contactCopy(200000))
}

// BenchmarkTraceLong: BenchmarkTraceContacts and BenchmarkTraceNDJSON on
// one long read (the copy 20 times over, 1.1-1.4 GB), where the chunk
// buffers each Read makes are paid once, as in a real copy of gigabytes.
func BenchmarkTraceLong(b *testing.B) {
	for _, tc := range []struct {
		name string
		data []byte
	}{{"contacts", contactCopy(500000)}, {"profiles", ndjsonCopy(100000)}} {
		b.Run(tc.name, func(b *testing.B) {
			const reps = 20
			b.SetBytes(int64(len(tc.data)) * reps)
			cpu0 := cpuTime(b)
			for b.Loop() {
				rs := make([]io.Reader, reps)
				for i := range rs {
					rs[i] = bytes.NewReader(tc.data)
				}
				t := New(nil, 0)
				if _, err := t.Read(io.MultiReader(rs...), nil); err != nil {
					b.Fatal(err)
				}
			}
			reportPerCore(b, int64(len(tc.data))*reps*int64(b.N), cpuTime(b)-cpu0)
		})
	}
}

// sqlDumpCopy is contactCopy's records (and a full name) as tool dumps a
// users table: mysqldump's INSERTs of about 1 MB (its default
// net_buffer_length), pg_dump's COPY, pg_dump --inserts' statement a row.
func sqlDumpCopy(tool string, n int) []byte {
	us := make([]person, n)
	for i := range us {
		us[i] = person{strconv.Itoa(i + 1), fmt.Sprintf("lena.morgan_%d", i*7919%16777216), "Lena Morgan",
			fmt.Sprintf("lena.morgan%d@mail.example", i), fmt.Sprintf("+4915123%06d", i%524288)}
	}
	return []byte(dumpOf(tool, us, nil, 9000))
}

// BenchmarkTraceSQL: BenchmarkTraceContacts' records as SQL dumps, a
// whole read of each on every core (the framer on the reading goroutine).
func BenchmarkTraceSQL(b *testing.B) {
	for _, tool := range []string{"mysqldump", "pg_dump", "pg_dump-inserts"} {
		b.Run(tool, func(b *testing.B) { benchRead(b, sqlDumpCopy(tool, 500000)) })
	}
}

// contactOnlyCopy is n contact-only records (e-mail and phone, no id or
// username), their phones in E.164 and in national form by turns: the
// records keepContact checks with canaries on.
func contactOnlyCopy(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		phone := fmt.Sprintf("+4915123%06d", i%524288)
		switch i % 3 {
		case 1:
			phone = fmt.Sprintf("(212) 5%02d-%04d", i%100, i%10000)
		case 2:
			phone = fmt.Sprintf("06 12 %02d %02d %02d", i%100, i/100%100, i/10000%100)
		}
		fmt.Fprintf(&b, `{"email":"lena.morgan%d@mail.example","phone":%q}`+"\n", i, phone)
	}
	return b.Bytes()
}

// BenchmarkTraceContactOnly: a whole read of contact-only records with
// canaries on (every record's e-mail and phone checked by keepContact).
func BenchmarkTraceContactOnly(b *testing.B) {
	c, err := canary.NewWithKeys(canary.Config{KeyEnv: "X"}, "bench-canary-key-0123456789abcdef")
	if err != nil {
		b.Fatal(err)
	}
	data := contactOnlyCopy(500000)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	cpu0 := cpuTime(b)
	for b.Loop() {
		t := New(c, 0)
		if _, err := t.Read(bytes.NewReader(data), nil); err != nil {
			b.Fatal(err)
		}
	}
	reportPerCore(b, int64(len(data))*int64(b.N), cpuTime(b)-cpu0)
}

// BenchmarkKeepContact: keepContact alone over contactOnlyCopy's e-mails
// and phones, one core: the per-record cost of checking a contact-only
// record (ns/op is per record).
func BenchmarkKeepContact(b *testing.B) {
	c, err := canary.NewWithKeys(canary.Config{KeyEnv: "X"}, "bench-canary-key-0123456789abcdef")
	if err != nil {
		b.Fatal(err)
	}
	var recs []Record
	scanJSON(contactOnlyCopy(30000), func(r *Record) {
		recs = append(recs, Record{Email: bytes.Clone(r.Email), Phone: bytes.Clone(r.Phone)})
	})
	set := map[contact]struct{}{}
	i := 0
	for b.Loop() {
		keepContact(c, &recs[i], set)
		if i++; i == len(recs) {
			i = 0
		}
	}
}
