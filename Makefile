# The front door. `make help` lists the targets; README.md explains them.
SHELL := /bin/bash
CARGO ?= cargo
PROFILE ?= local
AIPID ?= mds2909
FILES ?= a b
BIN := target/release
ARGS ?=

.PHONY: help build test lint run send poll receive stats completions static static-test dist dist-smoke bench fuzz clean

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 14

build: ## build the three binaries (release)
	$(CARGO) build --release --locked

test: ## the test suite: unit and integration tests against moto, fauxqs and the mock queue, lint, the static round trip and the dist tarball
	scripts/test-servers.sh run -- scripts/run-tests.sh
	$(MAKE) lint
	$(MAKE) static-test
	$(MAKE) dist

lint: ## rustfmt and clippy, warnings are errors; promtool checks and tests the alerting rules
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings
	$(CARGO) clippy --locked --all-targets --features test-hooks -- -D warnings
	cd deploy/prometheus && promtool check rules sqs-archive.rules.yml && promtool test rules sqs-archive.rules.test.yml

run: build ## the whole round trip on the local mock queue: send, poll, receive
	$(BIN)/sqs_archive --profile $(PROFILE) send --aipid $(AIPID) --filenames $(FILES)
	$(BIN)/poll_messages --profile $(PROFILE)
	$(BIN)/sqs_archive --profile $(PROFILE) receive --delete
	@echo "archived under: $$(ls -d var/archive/$(AIPID) 2>/dev/null || echo '(see archive_dir in config/$(PROFILE).json)')"

send: build ## send one request: make send AIPID=mds2909 FILES="a b" [PROFILE=local]
	$(BIN)/sqs_archive --profile $(PROFILE) send --aipid $(AIPID) --filenames $(FILES)

poll: build ## run poll_messages once, as cron would
	$(BIN)/poll_messages --profile $(PROFILE) $(ARGS)

receive: build ## print (and delete) completions
	$(BIN)/sqs_archive --profile $(PROFILE) receive --delete

stats: build ## queue depths
	$(BIN)/sqs_archive --profile $(PROFILE) stats

completions: build ## shell completions (bash, zsh, fish) and man pages in target/completions/ and target/man/man1/
	mkdir -p target/completions/bash target/completions/zsh target/completions/fish target/man/man1
	for b in sqs_archive poll_messages process_message; do \
	    $(BIN)/sqs_archive generate completions bash $$b >target/completions/bash/$$b && \
	    $(BIN)/sqs_archive generate completions zsh $$b >target/completions/zsh/_$$b && \
	    $(BIN)/sqs_archive generate completions fish $$b >target/completions/fish/$$b.fish && \
	    $(BIN)/sqs_archive generate man $$b >target/man/man1/$$b.1 || exit 1; \
	done

static: ## static binaries in target/static/ (LIBC=musl fails when the musl target is missing; LIBC=glibc; default: musl if installed, else glibc, and says which)
	scripts/build-static.sh

static-test: static ## the mock round trip with the static binaries
	scripts/static-smoke.sh target/static

dist: static ## versioned tarball for archive hosts, in dist/, checked by dist-smoke
	scripts/make-dist.sh
	scripts/dist-smoke.sh

dist-smoke: ## unpack the dist tarball and run the local round trip inside it
	scripts/dist-smoke.sh

bench: static ## benchmarks (not part of make test); prints a table
	scripts/test-servers.sh run -- bench/run.sh

fuzz: ## bounded fuzzing of the parsers (cargo fuzz, nightly)
	scripts/fuzz.sh

clean:
	$(CARGO) clean
	rm -rf dist var/mock-queues var/archive/*/ var/*.lock
