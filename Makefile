# dcloud developer commands. `make demo` runs the local network, `make test` the
# whole suite; both set everything up first (tools/setup.sh, safe to re-run).
.PHONY: setup demo marketplace test test-product test-contracts test-contracts-ganache lint bench bench-quick clean

PY := .venv/bin/python
BROWNIE := tools/brownie

setup:
	@tools/setup.sh

demo: setup
	@.venv/bin/dcloud devnet up --home .dev/devnet

# The marketplace service on SQLite with no configuration (DCLOUD_* variables override).
marketplace: setup
	@.venv/bin/python -m marketplace

test: setup lint test-product test-contracts test-contracts-ganache bench-quick
	@echo "all test stages passed"

# pytest exits 5 when it collects nothing; that is not a failure of the suite.
test-product: setup
	@$(PY) -m pytest; rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

test-contracts: setup
	@$(BROWNIE) test tests/contracts

# The whole suite again on Ganache 7; its stateful test at a smaller size (Ganache is
# several times slower than anvil, where the full-size stateful run happens).
test-contracts-ganache: setup
	@DCLOUD_STATEFUL_EXAMPLES=30 DCLOUD_STATEFUL_STEPS=40 \
		$(BROWNIE) test tests/contracts --network ganache-cli

lint: setup
	@.venv/bin/ruff check protocol marketplace agents bench tests scripts
	@.venv/bin/ruff format --check protocol marketplace agents bench tests scripts
	@.venv/bin/mypy protocol marketplace agents
	@.venv/bin/python tools/import_cycles.py protocol marketplace agents bench
	@.venv/bin/python tools/module_sizes.py protocol marketplace agents bench

# Every benchmark (gas, matching, packing, api, grid, storage, images, e2e, services, scale): `bench` at the quick
# sizes into bench/results.md, bench/results/ and docs/; `bench-full` at full size there;
# `bench-quick` (CI, part of `make test`) at the quick sizes into .dev/bench-quick.
bench: setup
	@tools/bench.sh --quick

.PHONY: bench-full
bench-full: setup
	@tools/bench.sh

bench-quick: setup
	@tools/bench.sh --quick --out .dev/bench-quick

clean:
	rm -rf build .dev .venv node_modules reports deployments/local.json
