"""Writers of veff's results: annotated VCF, score tables and sequence dumps."""
