"""One RocksDB configuration for every store, with its memory bounded.

RocksDB's defaults let a store's memory grow with the data: a 64 MB memtable, index and filter
blocks held outside any cache (they grow with the number of SST files). Measured with the
bench's state phase, a worker's RSS then rose from ~120 MB at 10k users to ~186 MB at 1M. Here
the memtables, and the block cache that also holds index and filter blocks, have fixed budgets,
so memory is set by configuration instead of by the number of users; values are compressed in
the table files (LZ4) on top of the profile's own compression.
"""

from __future__ import annotations

from typing import Any

#: defaults sized for a worker next to its Python heap; one user's profile is ~1 KB
MEMTABLE_MB = 8
BLOCK_CACHE_MB = 16


def bounded_options(memtable_mb: int = MEMTABLE_MB, cache_mb: int = BLOCK_CACHE_MB) -> Any:
    """rocksdict ``Options`` (raw bytes keys/values) with bounded memtables and block cache."""
    from rocksdict import BlockBasedOptions, Cache, DBCompressionType, Options

    options = Options(raw_mode=True)
    options.create_if_missing(True)
    options.set_write_buffer_size(memtable_mb * 2**20)
    options.set_max_write_buffer_number(2)
    options.set_compression_type(DBCompressionType.lz4())
    table = BlockBasedOptions()
    table.set_block_cache(Cache(cache_mb * 2**20))
    # index/filter blocks inside the cache's budget, the top level pinned so reads stay fast
    table.set_cache_index_and_filter_blocks(True)
    table.set_pin_l0_filter_and_index_blocks_in_cache(True)
    table.set_bloom_filter(10, False)
    options.set_block_based_table_factory(table)
    return options
