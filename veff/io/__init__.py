"""Readers of the files veff takes in: VCF (cyvcf2, and text lines), FASTA (pysam) and BED."""
