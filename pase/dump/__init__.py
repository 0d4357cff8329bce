"""Feature dumps as Kaldi/ESPnet make them: N jobs write shards of a data dir (each with its
frame counts and per-speaker CMVN sums, computed while writing), one cheap merge joins them.

`extract_job` runs job J of N, `merge_dump` merges, `run_jobs` runs the N jobs as local
processes, `dump_lock` keeps a second extraction off the same dump dir. The files are those of
`DumpLayout` (see `pase.dump.layout`).
"""
from pase.dump.job import Extractor, JobWriter, extract_job
from pase.dump.layout import DumpError, DumpLayout
from pase.dump.lock import dump_lock
from pase.dump.merge import merge_dump
from pase.dump.parallel import run_jobs, threads_per_job

__all__ = ["DumpError", "DumpLayout", "Extractor", "JobWriter", "dump_lock", "extract_job", "merge_dump",
           "run_jobs", "threads_per_job"]
