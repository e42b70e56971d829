"""Statistics, figures and summaries over runs' metrics."""
