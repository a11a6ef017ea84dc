# driftline: `make run` for the demo, `make test` for everything tested. Both install what they
# need: ONNX Runtime 1.31.1 (PyPI wheel) into .venv, tansu 0.6.0 into a cached tools folder,
# Debian's kcat.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV     := .venv
ORT_LIB  := $(VENV)/libonnxruntime.so
VENV_OK  := $(VENV)/.installed
CACHE    ?= $(HOME)/.cache/driftline
TOOLS    := $(CACHE)/tools
TANSU    := $(TOOLS)/bin/tansu
CARGO    ?= cargo

export ORT_DYLIB_PATH := $(abspath $(ORT_LIB))
export TANSU_BIN      := $(TANSU)

CARGO_DENY := $(TOOLS)/bin/cargo-deny
CARGO_FUZZ := $(TOOLS)/bin/cargo-fuzz

.PHONY: help run run-tansu tansu test soak fuzz deny bench bench-e2e bench-report bench-gpu-pack lint lint-deploy fmt validate converter-fixtures build-deps kcat prometheus chromium clean-tools

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

run: $(VENV_OK) build-deps ## The demo: embedded broker, demo model, live sensor feed, summary (DEMO_ARGS="--bootstrap HOST:PORT --events N --rate R --drift-after N")
	$(CARGO) run --release -q -p driftline -- demo $(DEMO_ARGS)

# The debug build, which `make test` builds too: tansu, not driftline, is the bottleneck here.
run-tansu: $(VENV_OK) build-deps $(TANSU) ## The demo against tansu, started as the tests start it (README's tansu figure; DEMO_ARGS as for run)
	$(CARGO) build -q -p driftline --bin driftline
	bash scripts/run-tansu.sh "$${CARGO_TARGET_DIR:-target}/debug/driftline" $(DEMO_ARGS)

# The binaries the tests run are built as users build them (no dev-dependencies' features);
# every test target then builds in one invocation, so the dev-dependencies' features (criterion's,
# proptest's) are resolved once and driftline's library is compiled once for all of them.
test: $(VENV_OK) build-deps $(TANSU) kcat prometheus chromium ## Unit, in-process (embedded broker) and end-to-end (tansu, kcat, confluent-kafka, Prometheus) tests
	$(CARGO) build -p driftline --bin driftline -p driftline-benches --bin bench_gpu
	$(CARGO) test --workspace

soak: $(VENV_OK) build-deps $(TANSU) ## The long fault runs (kill -9 and broker restarts in 1M events, one and two instances); see RELIABILITY.md
	$(CARGO) build --release -p driftline --bin driftline
	$(CARGO) test --release -p driftline-tests --test crash -- --ignored --nocapture --test-threads=1

fuzz: build-deps $(CARGO_FUZZ) ## cargo-fuzz on the decoder, config and profile loaders, FUZZ_SECONDS each (200: 10 min); nightly Rust
	PATH="$(TOOLS)/bin:$$PATH" bash scripts/fuzz.sh

deny: $(CARGO_DENY) ## Licences, bans and sources of every dependency (cargo-deny, offline; deny.toml)
	$(CARGO_DENY) --offline check licenses bans sources

# A debug build: 2 minutes instead of 5 on a cold 2-core machine, and its checks still take 3 s.
$(CARGO_DENY):
	$(CARGO) install cargo-deny --version 0.20.2 --locked --debug --root $(TOOLS)

$(CARGO_FUZZ):
	$(CARGO) install cargo-fuzz --version 0.13.2 --locked --root $(TOOLS)

bench: $(VENV_OK) build-deps ## Criterion benches (see BENCHMARKS.md)
	$(CARGO) bench -p driftline-benches

bench-e2e: $(VENV_OK) build-deps $(TANSU) ## End-to-end harness: (a)-(f) on the MockCluster, (a),(b) on tansu, latency at half load, RSS over 10M events (BENCH_E2E_ARGS="--events N --repeats R --rss-events N")
	$(CARGO) run --release -q -p driftline-benches --bin bench_e2e -- $(BENCH_E2E_ARGS)

bench-report: $(VENV_OK) build-deps chromium ## The drift report at 100 columns x 500 windows: size, and headless Chromium's time to open and draw it (BENCHMARKS.md)
	$(CARGO) run --release -q -p driftline-benches --bin bench_report

bench-gpu-pack: $(VENV_OK) ## Pack the GPU benchmark for a lent H100/H200 into .ort-gpu and .gpu-bench (then run benches/gpu/run-on-device.sh there; BENCHMARKS.md, "GPU")
	bash benches/gpu/pack.sh

validate: $(VENV_OK) ## Check configs/demo.toml against the demo model
	$(CARGO) run -q -p driftline -- validate --config configs/demo.toml

converter-fixtures: ## Regenerate tests/fixtures/converters/ (scikit-learn, skl2onnx, onnxmltools, LightGBM into .venv-fixtures)
	test -x .venv-fixtures/bin/python || python3 -m venv .venv-fixtures
	.venv-fixtures/bin/pip install -q --disable-pip-version-check -r requirements-fixtures.txt
	.venv-fixtures/bin/python models/make_converter_fixtures.py

lint-deploy: ## Static checks of docker/ and deploy/k8s/: compose, Dockerfiles, k8s and KEDA schemas, PromQL vs metrics (installs its tools)
	CACHE=$(CACHE) bash scripts/lint-deploy.sh

lint: build-deps ## rustfmt, clippy and the layering of pipeline/src, as CI would
	python3 scripts/check-layout.py
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# ONNX Runtime's library comes from the PyPI wheel; a stable symlink hides the Python version.
# A stamp file, not the symlink, records the install (a symlink's time is its target's).
# pip is tried three times: CI once failed on a download that did not match the index's hash
# (a corrupted onnx wheel) and passed on the next try.
$(VENV_OK): requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt || \
	  $(VENV)/bin/pip install -q --disable-pip-version-check --no-cache-dir -r requirements.txt || \
	  $(VENV)/bin/pip install -q --disable-pip-version-check --no-cache-dir -r requirements.txt
	ln -sf "$$(ls $(abspath $(VENV))/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.1.31.1)" $(ORT_LIB)
	test -e $(ORT_LIB)
	touch $@

# tansu is built once per machine and reused from the cache, in a target dir of its own, removed
# once it is installed. At opt-level 1: its release build was the longest step of a cold CI run
# (19.8 of 46.2 minutes at opt-level 3), and the tests use tansu as a broker to talk to, not to
# measure (README's tansu figures were taken with an opt-level 3 build).
tansu: $(TANSU) ## Install tansu 0.6.0 into the cached tools folder
$(TANSU):
	CARGO_PROFILE_RELEASE_OPT_LEVEL=1 $(CARGO) install tansu --version 0.6.0 --locked --features libsql --root $(TOOLS) --target-dir $(CACHE)/tansu-build
	rm -rf $(CACHE)/tansu-build

# librdkafka is built with TLS (SASL_SSL, SCRAM) against the system's OpenSSL.
build-deps:
	@dpkg -s libssl-dev pkg-config >/dev/null 2>&1 || { (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libssl-dev pkg-config; }

# Debian's chromium, headless: the browser the report and live-page tests look through.
chromium:
	@command -v chromium >/dev/null || { (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }

kcat:
	@command -v kcat >/dev/null || { (apt-get update -qq || true) && apt-get install -y -qq kcat; }

# Debian's Prometheus server: the operations tests let it scrape driftline's /metrics.
prometheus:
	@command -v prometheus >/dev/null || { (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; }

clean-tools: ## Remove the cached tools (tansu)
	rm -rf $(TOOLS)
