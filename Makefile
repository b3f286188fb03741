# The two commands a newcomer needs: `make demo` (install + run on the example data), `make test`.
PYTHON ?= python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test install system-deps lint bench

system-deps:
	@if ! command -v bedtools >/dev/null || ! command -v tabix >/dev/null || ! command -v bcftools >/dev/null; then \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq bedtools tabix bcftools; fi

install: system-deps
	$(PYTHON) -m pip install -q torch==2.13.0
	$(PYTHON) -m pip install -q -e ".[all,dev]"

demo: install
	mkdir -p demo_output
	veff score-variants example_data/models/mmsplice_donor/Donor.h5 \
		--vcf example_data/vcf/E1_hg38_chr22_32000001-32300000.vcf \
		--fasta example_data/reference/hg38_chr22_32000001-32300000.padded.fa.gz \
		--scores diff,logit -o demo_output/E1.donor.vcf.gz
	bcftools query -f '%CHROM\t%POS\t%ID\t%REF\t%ALT\t%INFO/VEFF_Donor_DIFF\t%INFO/VEFF_Donor_STATUS\n' \
		demo_output/E1.donor.vcf.gz | head -n 5

test:
	$(PYTHON) -m pytest -q

lint:
	ruff check veff tests benchmarks scripts
	mypy

bench:
	$(PYTHON) benchmarks/run.py
