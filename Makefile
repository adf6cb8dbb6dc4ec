# Every target creates .venv at the repo root when it is missing and installs the project into it.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
WORK   ?= work/demo

.PHONY: venv test test-all demo addon blender-matrix lint clean-work

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# torch is pinned in pyproject.toml so pip takes the CPU wheel on disk.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# pytest's exit code 5 ("no tests collected") must fail too; make then exits 2 like any error.
test: $(STAMP)
	$(PY) -m pytest -q; rc=$$?; [ $$rc -ne 5 ] || echo "pytest collected no tests: failing" >&2; exit $$rc

test-all: $(STAMP)
	$(PY) -m pytest -q -m ''

# The main job on built-in data: shapes -> renders -> daemon -> meshes, gallery, metrics, add-on.
demo: $(STAMP)
	$(PY) -m backend demo --out $(WORK)

# The Blender add-on: one validated zip per platform and Blender Python in dist/
# (blender4.2-5.0 and blender5.1; pyzmq wheels cached in work/).
addon: $(STAMP)
	$(PY) -m blender_addon build --out dist

# Opt-in: the add-on installed and run on Blender 4.2.0 ... 5.2.x, one cached venv per bpy
# version under work/blender-matrix (the first run downloads about 6 GB).
blender-matrix: $(STAMP)
	$(PY) scripts/blender_matrix.py

lint: $(STAMP)
	$(PY) -m ruff check synth_render backend blender_addon tests benchmarks

clean-work:
	rm -rf work
