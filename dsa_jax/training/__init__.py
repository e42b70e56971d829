"""Running programs over runs on disk: the chunked driver, sweeps, resume, PBT, reload, export."""
