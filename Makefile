# warden: build, test, bench. `make test` is what CI runs (.ci/run).
GO      ?= go
# An execution count, not a duration: with a duration Go 1.26's fuzz
# coordinator can fail a target at the deadline with "context deadline
# exceeded" and no failing input (golang/go#75804, fixed in Go 1.27); CI saw
# it on FuzzAppendString. 100,000 runs take 2-25 s a target here.
FUZZTIME ?= 100000x
# A brief run spends its time finding inputs rather than shrinking them:
# minimising one new input took most of a 10 s FuzzInspect run.
FUZZFLAGS ?= -fuzzminimizetime 1s

.PHONY: build test vet unit fuzz bench demo

build:
	$(GO) build -o warden ./cmd/warden

vet:
	$(GO) vet ./...

unit:
	$(GO) test -count=1 -timeout 25m ./...

# Each fuzz target runs briefly; a crash fails the build and leaves its
# input under testdata/fuzz for a regression test.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./internal/config
	$(GO) test -run '^$$' -fuzz '^FuzzForwarded$$' -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./internal/identify
	$(GO) test -run '^$$' -fuzz '^FuzzInspect$$' -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./internal/inspect
	$(GO) test -run '^$$' -fuzz '^FuzzDiff$$' -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./internal/inspect
	$(GO) test -run '^$$' -fuzz '^FuzzQueryValue$$' -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./internal/inspect
	$(GO) test -run '^$$' -fuzz '^FuzzBanRequests$$' -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./internal/admin
	$(GO) test -run '^$$' -fuzz '^FuzzCanonPath$$' -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./internal/gateway
	$(GO) test -run '^$$' -fuzz '^FuzzAppendString$$' -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./internal/refusal
	$(GO) test -run '^$$' -fuzz '^FuzzCredentials$$' -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./internal/gateway
	$(GO) test -run '^$$' -fuzz '^FuzzChunkedEnd$$' -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./internal/gateway
	$(GO) test -run '^$$' -fuzz '^FuzzReadSnapshot$$' -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./internal/store/memory/disk
	$(GO) test -run '^$$' -fuzz '^FuzzReadBanLog$$' -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./internal/store/memory/disk
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeLog$$' -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./internal/ledger
	$(GO) test -run '^$$' -fuzz '^FuzzParseSeg$$' -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./internal/ledger
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeEntry$$' -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./internal/ledger
	$(GO) test -run '^$$' -fuzz '^FuzzCacheTail$$' -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./internal/ledger
	$(GO) test -run '^$$' -fuzz '^FuzzParseRollup$$' -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./internal/ledger
	$(GO) test -run '^$$' -fuzz '^FuzzParseAuthored$$' -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./internal/ledger
	$(GO) test -run '^$$' -fuzz '^FuzzRead$$' -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./internal/trace
	$(GO) test -run '^$$' -fuzz '^FuzzKeepContact$$' -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./internal/trace
	$(GO) test -run '^$$' -fuzz '^FuzzSQLCuts$$' -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./internal/trace
	$(GO) test -run '^$$' -fuzz '^FuzzAnswer$$' -fuzztime $(FUZZTIME) $(FUZZFLAGS) ./internal/canary

test: vet unit fuzz

bench: build
	./warden bench

demo: build
	./warden demo
