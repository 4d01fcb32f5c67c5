# Two commands set up a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SCALE  ?= 1
DEMO_FEED ?= 1
## Server processes of `make run`. Two measured faster than one on this two-core machine
## (scripts/bench_workers.py, docs/benchmarks.md#workers: warm tiles 1.48x and 1.60x in two
## 3-round runs, cold 1.00x, with PostgreSQL and wrk on the same two cores); WORKERS=1: one.
WORKERS ?= 2

.PHONY: install run db seed test lint format clean-data vendor

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

## the PDF book's CJK font comes from Debian's packages (geo_api/fonts.py; cheap when present).
## Without it (not root, no apt) only the PDF export is refused, naming the package: go on.
## The same for the database's packages (PostGIS, pg_partman), which `georisk db up` needs.
install: $(STAMP)
	-$(BIN)/georisk fonts
	-$(BIN)/georisk db packages

db: install
	$(BIN)/georisk db up
	$(BIN)/georisk migrate

## make run: install, start PostGIS, migrate, seed the demo city if empty, serve on :8000 in
## WORKERS processes with the living demo's feed simulator (docs/operations.md#the-living-demo;
## DEMO_FEED=0: off), CAP messages signed with a demo key made once in .data/cap
## (docs/security.md), and the JT/T 808 gateway for terminals on :7808 (docs/jt808.md; try
## `python -m scripts.jt808_sim`)
run: db
	$(BIN)/georisk seed --if-empty --scale $(SCALE)
	$(BIN)/georisk keys demo
	$(BIN)/georisk cap keygen --if-missing --out .data/cap
	GEORISK_DEMO_FEED_ENABLED=$(DEMO_FEED) \
	GEORISK_JT808_PORT=$${GEORISK_JT808_PORT:-7808} \
	GEORISK_CAP_KEY_FILE=$${GEORISK_CAP_KEY_FILE:-.data/cap/cap-signing-key.pem} \
	GEORISK_CAP_CERT_FILE=$${GEORISK_CAP_CERT_FILE:-.data/cap/cap-signing-cert.pem} \
	$(BIN)/georisk serve --workers $(WORKERS)

## make test: the same bootstrap into the separate test database, then pytest
test: install
	$(BIN)/python -m tests.ensure_browser
	$(BIN)/georisk db up --database georisk_test
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy geo_api layers tiles scripts
	$(BIN)/lint-imports  # dependencies point one way: contracts in pyproject.toml

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## stop the private cluster and delete it with the generated demo data
clean-data: install
	-$(BIN)/georisk db down
	rm -rf .data

## refresh the vendored browser libraries from npm (committed; nothing loads from a CDN)
vendor:
	cd web && npm install --no-audit --no-fund
	mkdir -p web/vendor/leaflet web/vendor/vectorgrid web/vendor/geoman
	cp -r web/node_modules/leaflet/dist/leaflet.js web/node_modules/leaflet/dist/leaflet.css \
	      web/node_modules/leaflet/dist/images web/node_modules/leaflet/LICENSE web/vendor/leaflet/
	cp web/node_modules/leaflet.vectorgrid/dist/Leaflet.VectorGrid.bundled.min.js web/vendor/vectorgrid/
	cp web/node_modules/@geoman-io/leaflet-geoman-free/LICENSE \
	   web/node_modules/@geoman-io/leaflet-geoman-free/dist/leaflet-geoman.min.js \
	   web/node_modules/@geoman-io/leaflet-geoman-free/dist/leaflet-geoman.css web/vendor/geoman/
## the API docs' pages (/docs, /redoc): the bundles and their licences (third-party notices too)
	mkdir -p web/vendor/swagger-ui web/vendor/redoc
	cp web/node_modules/swagger-ui-dist/swagger-ui-bundle.js \
	   web/node_modules/swagger-ui-dist/swagger-ui-bundle.js.LICENSE.txt \
	   web/node_modules/swagger-ui-dist/swagger-ui.css web/node_modules/swagger-ui-dist/LICENSE \
	   web/node_modules/swagger-ui-dist/NOTICE web/vendor/swagger-ui/
	cp web/node_modules/redoc/bundles/redoc.standalone.js \
	   web/node_modules/redoc/bundles/redoc.standalone.js.LICENSE.txt \
	   web/node_modules/redoc/LICENSE web/vendor/redoc/
## ReDoc's sidebar credit shows Redocly's logo from their CDN; an empty data: image instead (the
## credit's text stays; the image removes itself on error), so the page asks nothing outside
	sed -i 's|https://cdn.redoc.ly/redoc/logo-mini.svg|data:,|' web/vendor/redoc/redoc.standalone.js
