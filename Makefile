# The two commands: `make run` (one node, embedded defaults, data in ./data,
# with the mock upstream beside it) and `make test` (every test).
GO        ?= go
BIN       := bin
PKGS      := ./...
SDK       := sdk/typescript
FUZZTIME  ?= 10s

.PHONY: image test-helm build run run-cluster test test-compat test-sdk race-lifecycle test-race lint vet fmt fuzz bench proto check tidy clean

build:
	$(GO) build -o $(BIN)/gateway ./cmd/gateway
	@if [ -d cmd/mockllm ] && ls cmd/mockllm/*.go >/dev/null 2>&1; then $(GO) build -o $(BIN)/mockllm ./cmd/mockllm; fi

run: build
	./scripts/run.sh

# Three nodes on 127.0.0.1:8080-8082 with the mock upstream and the demo
# platform (README "Cluster"); needs Postgres (ASSISTIV_POSTGRES_URL).
run-cluster: build
	./scripts/run-cluster.sh

# The container image (Dockerfile: static binary on distroless, non-root,
# /data volume): podman when installed (docker format, so HEALTHCHECK is
# kept), else docker.
IMAGE     ?= assistiv/gateway:dev
VERSION   ?= dev
CONTAINER ?= $(shell command -v podman >/dev/null 2>&1 && echo podman || echo docker)
image:
	$(CONTAINER) build $(if $(filter podman,$(CONTAINER)),--format docker) --build-arg VERSION=$(VERSION) -t $(IMAGE) .

# Every test once: the Go packages under the race detector (it covers the
# plain run too), then the TypeScript SDK's tests and the client
# compatibility matrix (both Node 20+).
test:
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -race -timeout 25m $(PKGS)
	$(MAKE) test-helm
	$(MAKE) race-lifecycle
	$(MAKE) test-sdk
	$(MAKE) test-compat

# The Helm chart's tests (deploy/helm: a module of its own, so Helm and
# k8s.io stay out of the gateway's go.mod): lint, render, assert.
test-helm:
	cd deploy/helm && $(GO) test -count=1 ./...

# The OAuth connection-lifecycle race tests, 100 times in a row under the
# race detector (about a minute).
race-lifecycle:
	$(GO) test -race -count=100 -run '^TestLifecycle(DisconnectDuringRefresh|DeactivateDuringTokenExchange)' ./mcp/

# The client matrix (compat/README.md): the pinned Node SDKs (npm ci from
# compat/package-lock.json, into the git-ignored compat/node_modules, only
# when the lock changed) against bin/gateway in front of bin/mockllm.
test-compat: build
	@if [ ! -f compat/node_modules/.package-lock.json ] || [ compat/package-lock.json -nt compat/node_modules/.package-lock.json ]; then \
		cd compat && npm ci --no-audit --no-fund; fi
	cd compat && node --test --test-concurrency=1 test/

# The TypeScript SDK (sdk/typescript, Node 20+): pinned dev dependencies
# from package-lock.json, type checking of the package, its tests and its
# README examples, then `npm test`, which builds dist/ and runs node --test
# against the real bin/gateway and bin/mockllm (about 20 s).
test-sdk: build
	cd $(SDK) && npm ci --no-audit --no-fund
	cd $(SDK) && npm run typecheck
	cd $(SDK) && npm test

lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

fuzz:
	$(GO) test ./internal/money -run '^$$' -fuzz FuzzParseUSD -fuzztime $(FUZZTIME)
	$(GO) test ./internal/ids -run '^$$' -fuzz FuzzParseKey -fuzztime $(FUZZTIME)
	$(GO) test ./internal/egress -run '^$$' -fuzz FuzzCheckURL -fuzztime $(FUZZTIME)
	$(GO) test ./webhooks/whsig -run '^$$' -fuzz FuzzVerifySignatureHeader -fuzztime $(FUZZTIME)
	$(GO) test ./providers -run '^$$' -fuzz FuzzSSEReader -fuzztime $(FUZZTIME)
	$(GO) test ./providers -run '^$$' -fuzz FuzzScanObject -fuzztime $(FUZZTIME)
	$(GO) test ./providers/openai -run '^$$' -fuzz FuzzOpenAIStream -fuzztime $(FUZZTIME)
	$(GO) test ./providers/anthropic -run '^$$' -fuzz FuzzAnthropicStream -fuzztime $(FUZZTIME)
	$(GO) test ./providers/google -run '^$$' -fuzz FuzzGoogleStream -fuzztime $(FUZZTIME)
	$(GO) test ./logs -run '^$$' -fuzz FuzzDecodeCursor -fuzztime $(FUZZTIME)
	$(GO) test ./logs -run '^$$' -fuzz FuzzDecodeEntry -fuzztime $(FUZZTIME)
	$(GO) test ./edge -run '^$$' -fuzz FuzzRequests -fuzztime $(FUZZTIME)
	$(GO) test ./skills -run '^$$' -fuzz FuzzReadArchive -fuzztime $(FUZZTIME)
	$(GO) test ./providers -run '^$$' -fuzz FuzzParseChatRequest -fuzztime $(FUZZTIME)
	$(GO) test ./providers/openai -run '^$$' -fuzz FuzzRelayChunk -fuzztime $(FUZZTIME)
	$(GO) test ./internal/jsonstr -run '^$$' -fuzz FuzzNumberEnd -fuzztime $(FUZZTIME)
	$(GO) test ./edge -run '^$$' -fuzz FuzzScanAmountAgreesWithDecodeStrict -fuzztime $(FUZZTIME)

# The bench suite (bench/README.md): at most 15 minutes on 2 cores;
# BENCH_QUICK=1 make bench runs the quick suite in under 3. Results go to
# bench/results/<timestamp>.{json,md} and LATEST.md.
bench: build
	$(GO) build -o $(BIN)/bareproxy ./bench/cmd/bareproxy
	$(GO) run ./bench/cmd/benchrun

proto:
	protoc --go_out=. --go_opt=paths=source_relative internal/pb/gateway.proto internal/pb/peers.proto cluster/wire/wire.proto cluster/wire/shared.proto

check: lint test
	$(GO) mod tidy
	git diff --exit-code go.mod go.sum

clean:
	rm -rf $(BIN)
