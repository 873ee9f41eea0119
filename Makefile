# make run  : set up and serve the portal on SQLite with demo data
# make test : set up and run the whole test suite (SQLite; PostgreSQL too with PORTAL_TEST_DATABASE_URL)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
FLASK  := $(BIN)/flask --app portal:create_app
HOST   ?= 127.0.0.1
PORT   ?= 5000
STAMP  := $(VENV)/.installed

.PHONY: run test setup translations extract-messages lint db-upgrade mail

run: setup
	@mkdir -p instance
	$(FLASK) db upgrade
	$(FLASK) portal seed-demo
	$(FLASK) portal send-mail
	@echo
	@$(FLASK) portal demo-logins
	@echo
	@echo "The portal runs at http://$(HOST):$(PORT)/  (Ctrl+C stops it)"
	$(FLASK) run --host $(HOST) --port $(PORT)

mail: setup
	$(FLASK) portal send-mail
	@echo "E-mails written as .eml files under instance/mail/"

# One worker per core (pytest-xdist), each taking whole modules or classes (a module's shared
# world is built once per worker); PYTEST_WORKERS=0 runs everything in this process.
PYTEST_WORKERS ?= auto
test: setup
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadscope $(PYTEST_ARGS)

setup: $(STAMP) translations

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is needed") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

translations: $(STAMP)
	$(BIN)/pybabel -q compile -d portal/translations

extract-messages: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -k lazy_pgettext:1c,2 -o portal/translations/messages.pot .
	$(BIN)/pybabel update -i portal/translations/messages.pot -d portal/translations --no-fuzzy-matching --ignore-obsolete

lint: $(STAMP)
	$(BIN)/ruff check portal tests
	$(BIN)/ruff format --check portal tests

db-upgrade: $(STAMP)
	$(FLASK) db upgrade
