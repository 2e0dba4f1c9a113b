# Robustness Explorer — the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup run test test-fast stress bench soak lint screenshots package clean

setup: $(STAMP)

# Reinstall only when the project's dependencies change.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev,zoo,robustbench,onnx,record]'
	@touch $(STAMP)

run: setup
	$(VENV)/bin/explorer gui

test: setup
	QT_QPA_PLATFORM=offscreen CUDA_VISIBLE_DEVICES= $(PY) -m pytest -q

test-fast: setup
	QT_QPA_PLATFORM=offscreen CUDA_VISIBLE_DEVICES= $(PY) -m pytest -q -m "not slow"

# The GUI tests N times in a row: a thread deadlock shows up one run in a few.
N ?= 10
stress: setup
	$(PY) scripts/stress_gui.py --runs $(N)

# The whole app through every page's demo for MINUTES (targets in bench/soak.py).
MINUTES ?= 30
soak: setup
	QT_QPA_PLATFORM=offscreen $(PY) bench/soak.py --minutes $(MINUTES)

bench: setup
	QT_QPA_PLATFORM=offscreen $(PY) bench/startup.py
	QT_QPA_PLATFORM=offscreen $(PY) bench/ui_latency.py
	$(PY) bench/attack_speed.py

lint: setup
	$(VENV)/bin/ruff check explorer tests bench scripts
	$(VENV)/bin/lint-imports

# Every page after its demo, in a fresh home (default workspace, no settings).
screenshots: setup
	@home=$$(mktemp -d); \
	for shot in data:data-panel attack:attack-lab training:training evaluate:evaluate \
	            inside:inside playground:playground denoise:denoise certify:certify; do \
	  echo "docs/$${shot#*:}.png"; \
	  env -u EXPLORER_HOME -u EXPLORER_CONFIG_DIR HOME=$$home \
	  QT_QPA_PLATFORM=offscreen $(VENV)/bin/explorer gui \
	    --screenshot docs/$${shot#*:}.png --panel $${shot%%:*} || exit 1; \
	done; rm -rf $$home

# The desktop bundle (packaging/README.md): a one-folder PyInstaller build in
# dist/explorer/. PyInstaller is installed here only, not by setup or test.
package: setup
	@$(PY) -c "import PyInstaller" 2>/dev/null || $(PY) -m pip install --quiet pyinstaller
	$(PY) -m PyInstaller --noconfirm --distpath dist --workpath build/pyinstaller \
	  packaging/explorer.spec
	$(PY) bench/bundle.py dist/explorer

clean:
	rm -rf $(VENV) build *.egg-info
