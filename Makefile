# The two commands a newcomer needs: `make demo` (install + run on the example data), `make test`.
# PYTHON may name any interpreter, e.g. a virtual env's (`make install PYTHON=.venv/bin/python`):
# every step runs through it (`$(PYTHON) -m veff`, not a `veff` that PATH may not have).
PYTHON ?= python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test install system-deps lint bench

system-deps:
	@if ! command -v bedtools >/dev/null || ! command -v tabix >/dev/null || ! command -v bcftools >/dev/null; then \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq bedtools tabix bcftools; fi

install: system-deps
	$(PYTHON) -m pip install -q torch==2.13.0
	$(PYTHON) -m pip install -q -e ".[all,dev]"
	# test-only: SpliceAI's Keras weights (GPLv3 package; its weights may not be shipped here)
	$(PYTHON) -m pip install -q --no-deps spliceai==1.3.1

demo: install
	mkdir -p demo_output
	$(PYTHON) -m veff score-variants example_data/models/donor_cnn/donor_cnn.pt \
		--vcf example_data/vcf/E1_hg38_chr22_32000001-32300000.vcf \
		--fasta example_data/reference/hg38_chr22_32000001-32300000.padded.fa.gz \
		--scores diff,logit --rc -o demo_output/E1.donor_cnn.vcf.gz --table demo_output/E1.donor_cnn.tsv
	bcftools query -f '%CHROM\t%POS\t%ID\t%REF\t%ALT\t%INFO/VEFF_donor_cnn_DIFF\t%INFO/VEFF_donor_cnn_STATUS\n' \
		demo_output/E1.donor_cnn.vcf.gz | head -n 12

test:
	$(PYTHON) -m pytest -q

lint:
	$(PYTHON) -m ruff check veff tests benchmarks scripts
	$(PYTHON) -m ruff format --check veff tests benchmarks scripts
	$(PYTHON) -m mypy

bench:
	$(PYTHON) benchmarks/run.py
