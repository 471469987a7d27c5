# Two commands do everything on a fresh machine:
#   make demo   set up, then run the main job on the embedded default
#   make test   set up, then run the tests
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel of torch lies on this machine's disk; pinning it keeps pip from pulling a CUDA build.
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= cpu,openvino-int8,train,litert,video,ray,dev

.PHONY: setup demo test models train weights photos export engines bench clean web-vendor web

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

# The main job on the embedded default: list the model zoo (parameters, MACs), export the shipped DyConvSR x2 (a freshly initialised
# one if weights/ has none), keep the fastest proven engine for this machine, upscale the bundled sample with the
# torch-free runtime, time the engines, and end on the parity verdict of every engine against the stored
# PyTorch references.
DEMO_CKPT := $(wildcard weights/dyconvsr_x2.json)
DEMO_ART := artifacts/$(if $(DEMO_CKPT),dyconvsr_x2,dyconvsr_x2_untrained)
demo: setup
	$(PY) -m train models --scale 2
	$(PY) -m export $(DEMO_CKPT)
	$(PY) -m runtime.check $(DEMO_ART) --tune -q
	$(PY) -m runtime.infer $(DEMO_ART) assets/astronaut_crop.png -o outputs/demo --overwrite -v
	$(PY) -m runtime.bench $(DEMO_ART) -r 720p --rounds 5 --backend onnxruntime -o outputs/demo/bench.json
	$(PY) -m runtime.check $(DEMO_ART)

# Quick training profile on the embedded images (scikit-image), then its evaluation on the
# held-out embedded images; see `python -m train fit --help`.
train: setup
	$(PY) -m train fit --profile quick $(if $(wildcard runs/quick/last.state.json),--resume)
	$(PY) -m train evaluate runs/quick/best -o runs/quick/eval

# The shipped weights: every config in configs/, resumed where a run stopped (safe to interrupt
# and re-run, in as many sessions as it takes), then each run's best checkpoint promoted to weights/.
# Development only: the configs read ../shared/data/sunhays80 beside the embedded photos.
# Extra training photographs for the DyConvSR x3/x4 configs (development only, like the Sun-Hays 80):
# the real photos among the artwork of two Debian packages, exactly these files, into cache/photos/.
PHOTOS := cache/photos
MATE_PHOTOS := Aqua Blinds Dune FreshFlower Garden GreenMeadow LadyBird RainDrops Storm TwoWings Wood YellowFlower
PLASMA_PHOTOS := BytheWater ColdRipple EveningGlow FallenLeaf Kite OneStandsOut Path summer_1am
# And the real photographs of Ubuntu Touch's wallpapers (Debian's lomiri-wallpapers-16.04 and -20.04, CC-BY-4.0,
# CC-BY-SA-3.0/4.0 or CC0-1.0 per file: each package's copyright file), exactly these files, into cache/photos/lomiri/.
LOMIRI16_PHOTOS := Bridge_by_Sander_Klootwijk Dragonfly_by_Bolly Picture_0B_by_freespace Picture_1A_by_freespace \
	Wine_by_Jakkub_Mede aitzgorri_by_Aitzol_Berasategi free_by_Peter_Nerlich friends_by_Aitzol_Berasategi \
	greentock_by_Peter_Nerlich life_by_Aitzol_Berasategi picosdeeuropa_by_Aitzol_Berasategi \
	seeding_by_Clements_Engelhardt sunset_by_Aitzol_Berasategi
LOMIRI20_PHOTOS := Kleiber_by_Lukas_Baubkus
photos: $(PHOTOS)/.done $(PHOTOS)/.lomiri.done
$(PHOTOS)/.lomiri.done:
	rm -rf $(PHOTOS)/.tmp-lomiri && mkdir -p $(PHOTOS)/.tmp-lomiri $(PHOTOS)/lomiri
	cd $(PHOTOS)/.tmp-lomiri && apt-get download lomiri-wallpapers-16.04=20.04.0-2 lomiri-wallpapers-20.04=20.04.0-2
	for deb in $(PHOTOS)/.tmp-lomiri/*.deb; do dpkg -x $$deb $(PHOTOS)/.tmp-lomiri/x || exit 1; done
	for n in $(LOMIRI16_PHOTOS) $(LOMIRI20_PHOTOS); do \
	  cp $(PHOTOS)/.tmp-lomiri/x/usr/share/backgrounds/$$n.jpg $(PHOTOS)/lomiri/$$n.jpg || exit 1; done
	rm -rf $(PHOTOS)/.tmp-lomiri && touch $@
$(PHOTOS)/.done:
	rm -rf $(PHOTOS)/.tmp && mkdir -p $(PHOTOS)/.tmp $(PHOTOS)/debian
	cd $(PHOTOS)/.tmp && apt-get download mate-backgrounds=1.26.0-1 plasma-workspace-wallpapers=4:5.27.5-2
	for deb in $(PHOTOS)/.tmp/*.deb; do dpkg -x $$deb $(PHOTOS)/.tmp/x || exit 1; done
	for n in $(MATE_PHOTOS); do cp $(PHOTOS)/.tmp/x/usr/share/backgrounds/mate/nature/$$n.jpg $(PHOTOS)/debian/mate-$$n.jpg || exit 1; done
	for n in $(PLASMA_PHOTOS); do cp $(PHOTOS)/.tmp/x/usr/share/wallpapers/$$n/contents/images/2560x1600.jpg $(PHOTOS)/debian/plasma-$$n.jpg || exit 1; done
	rm -rf $(PHOTOS)/.tmp && touch $@

WEIGHTS ?= dyconvsr_x2 dyconvsr_static_x2 dyconvsr_x3 dyconvsr_x4 srcnn_x2 srcnn_x3 srcnn_x4 dcnn
weights: setup photos
	@for name in $(WEIGHTS); do \
	  resume=; [ -f weights/runs/$$name/last.state.json ] && resume=--resume; \
	  $(PY) -m train fit --config configs/$$name.toml $$resume $(FIT_FLAGS) || exit 1; \
	  $(PY) -m train promote weights/runs/$$name/best weights/$$name || exit 1; \
	done

# Export every shipped checkpoint in weights/ to artifacts/<name>/.
export: setup
	$(PY) -m export

# The engines the wheel ships (engines/<model>.artifact, package dyconvsr_engines): DyConvSR x2/x3/x4 exported from
# the shipped checkpoints, then cut to their device files and small references (export/packaged.py). Rerun it
# whenever a shipped checkpoint changes (tests/test_packaging.py fails on a stale engine); the README's opening
# picture (reports/front.png) is made by the packaged dyconvsr_x2.
PACKAGED_MODELS := dyconvsr_x2 dyconvsr_x3 dyconvsr_x4
engines: setup
	$(PY) -m export $(PACKAGED_MODELS)
	$(PY) -m export.packaged $(addprefix artifacts/,$(PACKAGED_MODELS)) -o engines
	$(PY) -m benchmarks.front -o reports/front.png

# The benchmarks (reports/), then the README's generated block rewritten from reports/benchmark.json.
bench: setup
	$(PY) -m benchmarks.run --video 30
	$(PY) -m benchmarks.readme reports/benchmark.json --readme README.md

models: setup
	$(PY) -m train models --all

# Lint first (rules and line length in pyproject.toml [tool.ruff]), then the tests.
test: setup
	$(PY) -m ruff check .
	$(PY) -m pytest -q -n 2

# The browser (docs/browser.md): ONNX Runtime Web copied out of the npm package pinned in runtime/web/vendor.lock.json
# (integrity and every file's sha256 checked; npm needed this once), then the pages served on 127.0.0.1.
web-vendor: setup
	$(PY) -m runtime.web.vendor
WEB_ARTIFACT ?= dyconvsr_x2
web: web-vendor
	$(PY) -m runtime.web $(WEB_ARTIFACT)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
