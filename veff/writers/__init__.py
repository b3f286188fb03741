"""Writers of veff's results: annotated VCF (and, in later stages, tables)."""
