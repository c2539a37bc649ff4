# tierq: the two commands are `make demo` and `make test`.
GO ?= go
PKGS := ./...

.PHONY: all build test demo bench fuzz vet fmt sim report-check clean

all: build test

build:
	$(GO) build $(PKGS)

## test: gofmt, go vet and staticcheck, and every test (unit, integration against the embedded emulators,
## examples, fuzz seeds). staticcheck runs beside the tests, which spend much of their time waiting on
## emulators, so it costs little wall time; either failing fails the target.
test: fmt
	$(GO) vet $(PKGS)
	@$(GO) tool staticcheck $(PKGS) > .staticcheck.out 2>&1 & sc=$$!; \
	$(GO) test -race -count=1 $(PKGS); t=$$?; \
	wait $$sc; s=$$?; cat .staticcheck.out; rm -f .staticcheck.out; \
	if [ $$s -ne 0 ]; then echo "staticcheck failed"; fi; \
	exit $$(( t != 0 || s != 0 ))

## vet: gofmt, go vet and staticcheck alone
vet: fmt
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)

fmt:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi

## demo: the whole pipeline on embedded emulators over testdata/
demo:
	$(GO) run ./cmd/tierq-dev demo

## bench: job parsing (typical and 1 MiB worst cases), the simulator's throughput, then the limiter matrix (4 strategies × 3 scenarios), worker
## memory and the pipeline's overhead against a plain SDK loop (18 trials of 3,000 jobs; TIERQ_BENCH_JOBS=20000 for the issue's size), about
## 6 minutes; figures in issues are measured here; writes bench/results/*.json
bench:
	$(GO) test -run='^$$' -bench=ParseJob -benchtime=20x ./jobv1/
	$(GO) test -run='^$$' -bench=. -benchtime=3s ./internal/bedrocksim/
	$(GO) test -run='^$$' -bench=. -benchtime=1x -timeout=20m ./bench/

## chaos: 3 tierq worker processes on tierq-dev up, 1,000 jobs, a worker killed -9 every few seconds and restarted;
## checks one result per job, no extra model calls beyond those cut by the kills, empty queues; prints the figures.
## Workers run with their default timeouts, so the last kill's jobs come back after one visibility timeout.
.PHONY: chaos
chaos:
	$(GO) test -count=1 -v -run '^TestChaos$$' -timeout 30m ./internal/chaos/ -chaos.jobs=1000 -chaos.defaults

## fuzz: a minute of fuzzing per target
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzConverseDecoder -fuzztime=60s ./internal/bedrocksim/
	$(GO) test -run='^$$' -fuzz=FuzzParseJob -fuzztime=60s ./jobv1/
	$(GO) test -run='^$$' -fuzz=FuzzParseS3URI -fuzztime=60s ./jobv1/

## report-check: render the sample sizing report in headless Chromium and screenshot it to
## demo-out/sizing-report.png (needs Debian's chromium: apt-get install -y chromium; make test does not)
report-check:
	mkdir -p demo-out
	$(GO) test -count=1 -run '^TestReportInChromium$$' ./sizing/ -chromium -screenshot=$(CURDIR)/demo-out/sizing-report.png

## cfn-lint: lint deploy/cloudformation/tierq.yaml with AWS's cfn-lint (a Python tool: pip install cfn-lint).
## npm's "cfn-lint" is another, older validator whose resource spec has no AWS::Bedrock::Guardrail and
## predates properties the template uses. make test checks the template without either (deploy/cloudformation_test.go).
.PHONY: cfn-lint
cfn-lint:
	@if command -v cfn-lint >/dev/null 2>&1; then cfn-lint deploy/cloudformation/tierq.yaml; \
	else echo "cfn-lint is not installed: pip install cfn-lint (or pipx install cfn-lint), then run make cfn-lint again"; exit 1; fi

## sim: serve the Bedrock simulator on 127.0.0.1:4599
sim:
	$(GO) run ./cmd/tierq sim

clean:
	rm -rf demo-out
