"""Readers of the files veff takes in: VCF (cyvcf2), FASTA (pysam) and BED (pybedtools)."""
