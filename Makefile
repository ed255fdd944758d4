# Two commands from clone to green: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch lies on local disk; installing it first keeps pip from pulling a CUDA build.
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev,parquet,eval,server,onnx,openvino,train,index,langchain,llamaindex,chroma,haystack,ray
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
LINTED := src tests benchmarks scripts/release_check.py scripts/release_smoke.py examples

.PHONY: demo test lint typecheck unit unit-other-kernels release-check setup clean chromium

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/instructembed demo

lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

typecheck: $(STAMP)
	$(BIN)/mypy

# The playground's browser tests drive Debian's chromium (never a downloaded browser); installed
# here when missing (root in CI). Without it they skip locally and fail in CI.
chromium:
	@command -v chromium >/dev/null 2>&1 || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium) \
		|| echo "could not install chromium (not root?): the browser tests will skip locally"

unit: $(STAMP) chromium
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

# The fast tests again on other kernels, so a test that holds bit for bit on one CPU only fails on every
# machine, not on whichever CPU CI gets: oneDNN and MKL capped at AVX2 (ONEDNN_VERBOSE=1 shows
# jit:avx2, MKL_VERBOSE=1 "AVX2 enabled processors") and every backend's output offset by a tiny
# amount keyed by the batch's shape (tests/helpers/kernels.py). OpenVINO's CPU plugin refuses to
# compile graphs under the oneDNN cap (a Softmax node has no kernel), so its tests stay out.
unit-other-kernels: $(STAMP)
	ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 INSTRUCTEMBED_TEST_KERNEL_JITTER=1 HF_HUB_OFFLINE=1 \
		$(BIN)/python -m pytest -q -m "not slow" -p no:cacheprovider -k "not openvino"

# The wheel as a user installs it: build sdist + wheel, twine check, every package file in the wheel, a
# fresh venv outside the checkout (torch as above, then the wheel with its extras), a smoke test per extra.
release-check: $(STAMP)
	$(BIN)/python scripts/release_check.py --torch-spec "$(TORCH_SPEC)"

test: lint typecheck unit unit-other-kernels release-check

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
